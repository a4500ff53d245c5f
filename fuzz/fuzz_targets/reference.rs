//! OCI reference parser (`registry/repo:tag@digest`), digest and tag validators.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sign_action::oci::reference::Reference::parse(s);
        let _ = sign_action::oci::reference::validate_digest(s);
        let _ = sign_action::oci::reference::validate_tag(s);
    }
});
