//! COSE_Sign1 envelope parser (tagged CBOR, critical headers, duplicate keys): refuse, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = sign_action::envelope::cose::parse(data) {
        let _ = sign_action::envelope::verify_integrity(&env);
    }
});
