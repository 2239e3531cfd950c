//! Shared harness of the integration tests in `tests/tests/`.
