//! # dhtmeet-sim
//!
//! The deterministic network simulator with NAT models (RFC 4787) is the next milestone
//! (issue 3). This crate holds its place in the workspace so that the layout the design
//! names is complete; it exports nothing yet.

#![deny(missing_docs)]
