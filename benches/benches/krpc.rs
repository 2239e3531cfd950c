//! KRPC codec benchmarks (being written).
fn main() {}
