//! JWS (JSON serialization) envelope parser: must refuse, never panic, on any input. Inputs
//! that parse also go through the integrity check, which re-reads the protected header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = sign_action::envelope::jws::parse(data) {
        let _ = sign_action::envelope::verify_integrity(&env);
    }
});
