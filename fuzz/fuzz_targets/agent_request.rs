#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| grantkeeper_core::fuzzing::agent_request(data));
