//! Fuzzes the lifecycle-notification parser handlers use on every delivered message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = lifehook_model::delivery::parse_delivery(s);
    }
});
