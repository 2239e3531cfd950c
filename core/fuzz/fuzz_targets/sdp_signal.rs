#![no_main]
use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dhtmeet_core::fuzz::sdp_signal(*ORIGIN.get_or_init(Instant::now), data)
});
