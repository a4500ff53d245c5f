//! OCI image manifest / image index decoding and the tag-schema index merge that works on
//! registry-supplied index bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<sign_action::oci::manifest::ImageManifest>(data);
    let _ = serde_json::from_slice::<sign_action::oci::manifest::ImageIndex>(data);
    let _ = sign_action::oci::manifest::index_lists(
        data,
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
});
