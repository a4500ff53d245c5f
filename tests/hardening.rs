//! "Nothing lost, nothing let in": concurrent signers against the real registry and secrets
//! that must never reach output, driven through the `sign-action` binary.

#[path = "support/e2e.rs"]
mod e2e;
mod support;

use std::process::Stdio;

use e2e::{bin, text, verify, TrustConfig};
use sign_action::crypto::KeySpec;
use sign_action::oci::reference::Reference;
use sign_action::oci::ArtifactStore;
use support::{make_named_test_key, push_test_image, Registry, RegistryConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_signer_processes_lose_no_signature() {
    // docker-registry has no Referrers API and ignores If-Match: every signer goes through the
    // tag-schema index read-modify-write with read-back confirmation.
    const SIGNERS: usize = 16;
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "conc16", "v1").await;
    let reference = format!("{}/conc16@{}", reg.host, subject.digest);
    let keys_dir = tempfile::tempdir().unwrap();
    let keys: Vec<_> = (0..SIGNERS)
        .map(|i| make_named_test_key(keys_dir.path(), &format!("signer{i}"), KeySpec::EcP256))
        .collect();

    let children: Vec<_> = keys
        .iter()
        .map(|k| {
            bin()
                .arg("sign")
                .arg(&reference)
                .arg("--key")
                .arg(&k.key)
                .arg("--cert")
                .arg(&k.chain)
                .args(["--output", "json", "--no-revocation-check"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sign-action")
        })
        .collect();
    let mut pushed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent signer failed: {}",
            text(&out)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        pushed.push(
            report["signatures"][0]["signature-digest"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    let r = Reference::parse(&reference).unwrap();
    let mut listed: Vec<String> = client
        .list_signatures(&r, &subject)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.digest)
        .collect();
    listed.sort();
    pushed.sort();
    pushed.dedup();
    assert_eq!(
        pushed.len(),
        SIGNERS,
        "signers must produce distinct signatures"
    );
    assert_eq!(
        listed, pushed,
        "every concurrent signature must be discoverable"
    );

    // Each signer's signature verifies on its own: a trust store holding only that signer's
    // certificate passes only if its signature is listed and intact.
    for (i, k) in keys.iter().enumerate() {
        let config = TrustConfig::new();
        config.add_store("ca", "one", &[&k.root]);
        let policy = config.policy("p.json", "strict", &["ca:one"], None);
        let (out, _) = verify(&config, &policy, &[&reference]);
        assert!(
            out.status.success(),
            "signer {i} did not verify: {}",
            text(&out)
        );
    }
}
