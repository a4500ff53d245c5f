//! Trust policy document parser and validator (scopes, identities, levels).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sign_action::policy::document::TrustPolicyDocument::parse_str(s);
    }
});
