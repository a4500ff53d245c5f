//! PR-check scanners: YAML (Kubernetes, Compose, workflows) and Dockerfiles, and the glob
//! matcher for `files:` patterns. Must never panic or loop, whatever the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sign_action::check::scan::{scan_text, FileKind, Glob};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = scan_text(".github/workflows/x.yml", FileKind::Yaml, s);
        let _ = scan_text("Dockerfile", FileKind::Dockerfile, s);
        if let Some((pattern, path)) = s.split_once('\n') {
            if pattern.len() < 64 {
                if let Ok(g) = Glob::new(pattern) {
                    let _ = g.matches(path);
                }
            }
        }
    }
});
