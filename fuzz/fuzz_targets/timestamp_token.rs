//! RFC 3161 timestamp token (CMS SignedData + TSTInfo) parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sign_action::timestamp::parse_token_info(data);
});
