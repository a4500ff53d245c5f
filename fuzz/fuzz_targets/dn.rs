//! RFC 4514 distinguished-name parser used for `x509.subject:` trusted identities.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sign_action::policy::identity::parse_rfc4514(s);
        let _ = sign_action::policy::identity::TrustedIdentity::parse(s);
    }
});
