//! The cargo-fuzz corpora and crash artifacts as regression tests of the normal test run.
//!
//! `cargo fuzz` needs nightly and is run only by `scripts/fuzz`; what it learnt is kept in
//! `fuzz/corpus/TARGET/` (inputs reaching new code) and `fuzz/artifacts/TARGET/` (inputs that
//! crashed, once fixed). Every file there goes through the same library entry points as the
//! fuzz target in `fuzz/fuzz_targets/TARGET.rs`, and none may panic. The target list is read
//! from `fuzz/fuzz_targets/`, so a new fuzz target without an entry here, or a target whose
//! corpus is empty, fails this test instead of silently testing nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The body of each fuzz target, calling the library exactly as the target does.
fn targets() -> BTreeMap<&'static str, fn(&[u8])> {
    let mut t: BTreeMap<&'static str, fn(&[u8])> = BTreeMap::new();
    t.insert("jws", |data| {
        if let Ok(env) = sign_action::envelope::jws::parse(data) {
            let _ = sign_action::envelope::verify_integrity(&env);
        }
    });
    t.insert("check_scan", |data| {
        use sign_action::check::scan::{scan_text, FileKind, Glob};
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
    t.insert("cose", |data| {
        if let Ok(env) = sign_action::envelope::cose::parse(data) {
            let _ = sign_action::envelope::verify_integrity(&env);
        }
    });
    t.insert("dn", |data| {
        if let Ok(s) = std::str::from_utf8(data) {
            let _ = sign_action::policy::identity::parse_rfc4514(s);
            let _ = sign_action::policy::identity::TrustedIdentity::parse(s);
        }
    });
    t.insert("oci_manifest", |data| {
        let _ = serde_json::from_slice::<sign_action::oci::manifest::ImageManifest>(data);
        let _ = serde_json::from_slice::<sign_action::oci::manifest::ImageIndex>(data);
        let _ = sign_action::oci::manifest::index_lists(
            data,
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        );
    });
    t.insert("reference", |data| {
        if let Ok(s) = std::str::from_utf8(data) {
            let _ = sign_action::oci::reference::Reference::parse(s);
            let _ = sign_action::oci::reference::validate_digest(s);
            let _ = sign_action::oci::reference::validate_tag(s);
        }
    });
    t.insert("timestamp_token", |data| {
        let _ = sign_action::timestamp::parse_token_info(data);
    });
    t.insert("trust_policy", |data| {
        if let Ok(s) = std::str::from_utf8(data) {
            let _ = sign_action::policy::document::TrustPolicyDocument::parse_str(s);
        }
    });
    t
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Regular files directly in `dir` (none if it does not exist), sorted for stable reports.
fn files_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// libFuzzer's names for inputs that crashed, leaked, ran out of memory or timed out.
fn is_artifact(name: &str) -> bool {
    ["crash-", "leak-", "oom-", "timeout-", "slow-unit-"]
        .iter()
        .any(|p| name.starts_with(p))
}

#[test]
fn every_fuzz_target_has_a_regression_runner() {
    let declared: Vec<String> = files_in(&fuzz_dir().join("fuzz_targets"), |n| n.ends_with(".rs"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        !declared.is_empty(),
        "no fuzz targets found in fuzz/fuzz_targets"
    );
    let runners: Vec<String> = targets().keys().map(|k| k.to_string()).collect();
    assert_eq!(
        declared, runners,
        "fuzz/fuzz_targets and this test's runners differ: add the new target's body to targets()"
    );
}

#[test]
fn corpus_and_crash_inputs_never_panic() {
    // Parsers must refuse, not panic; a panic here names the input file.
    let mut report = Vec::new();
    let mut total = 0usize;
    for (name, run) in targets() {
        let corpus = files_in(&fuzz_dir().join("corpus").join(name), |_| true);
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty or missing: the regression test would test nothing"
        );
        let artifacts = files_in(&fuzz_dir().join("artifacts").join(name), is_artifact);
        for file in corpus.iter().chain(&artifacts) {
            let data = std::fs::read(file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(
                outcome.is_ok(),
                "fuzz target {name} panicked on {}",
                file.display()
            );
        }
        total += corpus.len() + artifacts.len();
        report.push(format!(
            "{name}: {} corpus, {} artifacts",
            corpus.len(),
            artifacts.len()
        ));
    }
    eprintln!("fuzz regression inputs: {total} ({})", report.join("; "));
}
