#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dhtmeet_core::fuzz::krpc_decode(data));
