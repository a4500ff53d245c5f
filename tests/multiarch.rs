//! Multi-arch images and real registries' quirks, end to end through the `sign-action`
//! binary: recursive signing and verification of an image index on the real
//! `docker-registry`, the tag-schema index entries consumers read (field by field, foreign
//! entries kept), and a registry front (a proxy before the real registry) that lies about
//! the Referrers API or refuses `subject`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use sign_action::oci::{Descriptor, OCI_INDEX, OCI_MANIFEST, SIGNATURE_ARTIFACT_TYPE};
use support::registry_front::{Quirk, RegistryFront};
use support::{push_test_image, Registry, RegistryConfig};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    cmd.env_remove("SIGN_ACTION_KEY_PASSWORD")
        .env_remove("SIGN_ACTION_REGISTRY_USERNAME")
        .env_remove("SIGN_ACTION_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config");
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A test certificate, trust store and trust policy made by the binary itself.
fn generate_test_cert(dir: &Path) {
    let out = bin()
        .args(["cert", "generate-test", "multi", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "generate-test: {}", text(&out.stderr));
}

fn sign(dir: &Path, references: &[&str], extra: &[&str]) -> (Output, Value) {
    let out = bin()
        .arg("sign")
        .args(references)
        .arg("--key")
        .arg(dir.join("multi.key"))
        .arg("--cert")
        .arg(dir.join("multi.crt"))
        .args(["--output", "json"])
        .args(extra)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

fn verify(dir: &Path, reference: &str, extra: &[&str]) -> (Output, Value) {
    let out = bin()
        .args(["verify", reference, "--trust-policy"])
        .arg(dir.join("trustpolicy.json"))
        .arg("--trust-store")
        .arg(dir)
        .args(["--output", "json"])
        .args(extra)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

async fn get_json(registry: &Registry, path: &str, accept: &str) -> (u16, Value, Vec<u8>) {
    let (status, _, body) = registry.raw_get(path, accept).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        body,
    )
}

fn tag_of(digest: &str) -> String {
    digest.replace(':', "-")
}

/// Two platform images and an index listing them, pushed under `repo:multi`.
async fn push_index(registry: &Registry, repo: &str) -> (Descriptor, Descriptor, Descriptor) {
    let client = registry.client();
    let amd64 = push_test_image(&client, &registry.host, repo, "amd64").await;
    let arm64 = push_test_image(&client, &registry.host, repo, "arm64").await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64.digest, "size": amd64.size,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64.digest, "size": arm64.size,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    client
        .push_manifest(&registry.host, repo, "multi", OCI_INDEX, &bytes)
        .await
        .unwrap();
    (Descriptor::of_bytes(OCI_INDEX, &bytes), amd64, arm64)
}

#[tokio::test(flavor = "multi_thread")]
async fn recursive_signing_of_a_multi_arch_index_on_the_real_registry() {
    let registry = Registry::start(RegistryConfig::default());
    let dir = tempfile::tempdir().unwrap();
    generate_test_cert(dir.path());
    let repo = "app/multi";
    let (index, amd64, arm64) = push_index(&registry, repo).await;
    let index_ref = format!("{}/{repo}@{}", registry.host, index.digest);

    // A foreign referrer (an SBOM) already listed in amd64's tag-schema index.
    let client = registry.client();
    let sbom = push_test_image(&client, &registry.host, repo, "sbom").await;
    let foreign = json!({
        "mediaType": OCI_MANIFEST,
        "digest": sbom.digest,
        "size": sbom.size,
        "artifactType": "application/spdx+json",
        "annotations": {"org.example.kind": "sbom", "org.opencontainers.image.created": "2025-01-01T00:00:00Z"},
    });
    let foreign_index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [foreign]});
    let status = registry
        .raw_put(
            &format!("/v2/{repo}/manifests/{}", tag_of(&amd64.digest)),
            OCI_INDEX,
            serde_json::to_vec(&foreign_index).unwrap(),
        )
        .await;
    assert_eq!(status, 201, "foreign tag-schema index stored");

    // Without --recursive: the index alone is signed, with a warning naming the flag.
    let (out, report) = sign(dir.path(), &[&index_ref], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report["signatures"].as_array().unwrap().len(), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is an image index") && stderr.contains("--recursive"),
        "{stderr}"
    );
    // ...so a recursive verification fails, naming the unsigned platforms.
    let (out, result) = verify(dir.path(), &index_ref, &["--recursive"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = &result["results"][0];
    assert_eq!(r["verified"], false);
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("2 of 2 platform manifests failed") && error.contains("linux/arm64/v8"),
        "{error}"
    );
    assert_eq!(r["platforms"][0]["verified"], false);

    // With --recursive: the index and both platform manifests, one signature each.
    let (out, report) = sign(dir.path(), &[&index_ref], &["--recursive"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("is an image index"));
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 3, "{report}");
    assert!(report["failures"].as_array().unwrap().is_empty());
    let expect = [
        (&index, index_ref.clone(), None),
        (
            &amd64,
            format!("{}/{repo}@{}", registry.host, amd64.digest),
            Some("linux/amd64"),
        ),
        (
            &arm64,
            format!("{}/{repo}@{}", registry.host, arm64.digest),
            Some("linux/arm64/v8"),
        ),
    ];
    for (sig, (subject, reference, platform)) in sigs.iter().zip(&expect) {
        assert_eq!(sig["digest"], subject.digest.as_str());
        assert_eq!(sig["reference"], reference.as_str());
        assert_eq!(sig["platform"].as_str(), *platform);
        assert_eq!(sig["storage"], "tag-schema");
    }

    // Every subject's tag-schema index lists its signatures with what notation and other
    // consumers read: artifactType and all the signature manifest's annotations.
    for (subject, _, _) in &expect {
        let (status, tag_index, _) = get_json(
            &registry,
            &format!("/v2/{repo}/manifests/{}", tag_of(&subject.digest)),
            OCI_INDEX,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(tag_index["mediaType"], OCI_INDEX);
        let entries = tag_index["manifests"].as_array().unwrap();
        let digests: std::collections::HashSet<_> =
            entries.iter().map(|e| e["digest"].clone()).collect();
        assert_eq!(digests.len(), entries.len(), "no duplicate entries");
        let ours: Vec<&Value> = sigs
            .iter()
            .filter(|s| s["digest"] == subject.digest.as_str())
            .collect();
        assert_eq!(ours.len(), 1);
        let sig_digest = ours[0]["signature-digest"].as_str().unwrap();
        let entry = entries
            .iter()
            .find(|e| e["digest"] == sig_digest)
            .expect("signature listed");
        let (status, manifest, raw) = get_json(
            &registry,
            &format!("/v2/{repo}/manifests/{sig_digest}"),
            OCI_MANIFEST,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        assert_eq!(entry["size"], raw.len() as u64);
        assert_eq!(entry["artifactType"], SIGNATURE_ARTIFACT_TYPE);
        assert_eq!(entry["artifactType"], manifest["config"]["mediaType"]);
        assert_eq!(manifest["subject"]["digest"], subject.digest.as_str());
        let annotations = manifest["annotations"].as_object().unwrap();
        let entry_annotations = entry["annotations"].as_object().unwrap();
        assert_eq!(entry_annotations.len(), annotations.len());
        for key in [
            "io.cncf.notary.x509chain.thumbprint#S256",
            "org.opencontainers.image.created",
        ] {
            assert!(annotations[key].is_string(), "{key} on the manifest");
            assert_eq!(entry_annotations[key], annotations[key], "{key}");
        }
        if subject.digest == amd64.digest {
            assert_eq!(entries.len(), 2, "the foreign entry and our signature");
            assert_eq!(entries[0], foreign, "foreign entry kept untouched");
        }
        if subject.digest == index.digest {
            assert_eq!(entries.len(), 2, "the first, non-recursive signature too");
        }
    }

    // Recursive verification: the index and every platform verify, reported per platform.
    let (out, result) = verify(dir.path(), &index_ref, &["--recursive"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let r = &result["results"][0];
    assert_eq!(r["verified"], true);
    let platforms = r["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    for (p, (subject, reference, platform)) in platforms.iter().zip(&expect[1..]) {
        assert_eq!(p["platform"].as_str(), *platform);
        assert_eq!(p["digest"], subject.digest.as_str());
        assert_eq!(p["reference"], reference.as_str());
        assert_eq!(p["verified"], true);
        assert!(p["signature"]["digest"].is_string());
    }
    // Text output names each platform.
    let out = bin()
        .args(["verify", &index_ref, "--recursive", "--trust-policy"])
        .arg(dir.path().join("trustpolicy.json"))
        .arg("--trust-store")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("platform linux/amd64 verified")
            && stdout.contains("platform linux/arm64/v8 verified"),
        "{stdout}"
    );
}

/// Sign two images through a front that claims `subject` support but whose Referrers API
/// is unusable: both signatures land in the tag schema, the API is checked once per run,
/// and verification through the same front finds them.
async fn lying_referrers_api(quirk: Quirk) {
    let registry = Registry::start(RegistryConfig::default());
    let front = RegistryFront::start(&registry.host, quirk);
    let dir = tempfile::tempdir().unwrap();
    generate_test_cert(dir.path());
    let client = registry.client();
    let a = push_test_image(&client, &registry.host, "app/front", "a").await;
    let b = push_test_image(&client, &registry.host, "app/front", "b").await;
    let ref_a = format!("{}/app/front@{}", front.host, a.digest);
    let ref_b = format!("{}/app/front@{}", front.host, b.digest);
    let (out, report) = sign(dir.path(), &[&ref_a, &ref_b], &["--concurrency", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    for s in sigs {
        assert_eq!(
            s["storage"], "tag-schema",
            "{quirk:?}: reported in the result"
        );
    }
    let seen = front.requests();
    let referrers: Vec<_> = seen
        .iter()
        .filter(|r| r.target.contains("/referrers/"))
        .collect();
    assert_eq!(referrers.len(), 1, "{quirk:?}: decided once per registry");
    assert_eq!(referrers[0].status, 200);
    // The OCI-Subject claim was made (so the check was needed) and the tag schema written.
    for subject in [&a, &b] {
        let (status, index, _) = get_json(
            &registry,
            &format!("/v2/app/front/manifests/{}", tag_of(&subject.digest)),
            OCI_INDEX,
        )
        .await;
        assert_eq!(status, 200, "{quirk:?}: tag schema index written");
        let sig = sigs
            .iter()
            .find(|s| s["digest"] == subject.digest.as_str())
            .unwrap();
        assert!(index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["digest"] == sig["signature-digest"]));
    }
    let before = front.requests().len();
    let (out, result) = verify(dir.path(), &ref_a, &[]);
    assert!(
        out.status.success(),
        "{quirk:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(result["results"][0]["verified"], true);
    let during_verify = &front.requests()[before..];
    assert!(during_verify
        .iter()
        .any(|r| r.target.contains("/referrers/")));
    assert!(during_verify
        .iter()
        .any(|r| r.target.ends_with(&tag_of(&a.digest))));
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_answering_html_falls_back_to_the_tag_schema() {
    lying_referrers_api(Quirk::ReferrersHtml).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_index_missing_new_signatures_falls_back_to_the_tag_schema() {
    lying_referrers_api(Quirk::ReferrersOmits).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_refusing_subject_is_named_with_the_field_and_an_alternative() {
    let registry = Registry::start(RegistryConfig::default());
    let front = RegistryFront::start(&registry.host, Quirk::RejectSubject);
    let dir = tempfile::tempdir().unwrap();
    generate_test_cert(dir.path());
    let client = registry.client();
    let a = push_test_image(&client, &registry.host, "app/nosubject", "a").await;
    let reference = format!("{}/app/nosubject@{}", front.host, a.digest);

    let (out, report) = sign(dir.path(), &[&reference], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(report["signatures"].as_array().unwrap().is_empty());
    let error = report["failures"][0]["error"].as_str().unwrap();
    for needle in [
        front.host.as_str(),
        "`subject` field",
        "MANIFEST_INVALID",
        "--oci-layout",
    ] {
        assert!(error.contains(needle), "{needle:?} in {error}");
    }

    // The artifact-type form carries artifactType too; the registry does not say which it
    // refuses, so both are named and the legacy form is offered.
    let (out, report) = sign(
        dir.path(),
        &[&reference],
        &["--manifest-form", "artifact-type"],
    );
    assert_eq!(out.status.code(), Some(1));
    let error = report["failures"][0]["error"].as_str().unwrap();
    for needle in [
        front.host.as_str(),
        "`artifactType or subject` field",
        "--manifest-form legacy",
    ] {
        assert!(error.contains(needle), "{needle:?} in {error}");
    }
    // Nothing half-written: no tag schema index appeared.
    let (status, _, _) = get_json(
        &registry,
        &format!("/v2/app/nosubject/manifests/{}", tag_of(&a.digest)),
        OCI_INDEX,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_schema_updates_are_conditional_on_the_etag() {
    let registry = Registry::start(RegistryConfig::default());
    let front = RegistryFront::start(&registry.host, Quirk::None);
    let dir = tempfile::tempdir().unwrap();
    generate_test_cert(dir.path());
    let client = registry.client();
    let a = push_test_image(&client, &registry.host, "app/etag", "a").await;
    let reference = format!("{}/app/etag@{}", front.host, a.digest);
    let tag_path = format!("/v2/app/etag/manifests/{}", tag_of(&a.digest));
    for round in 0..2 {
        let (out, _) = sign(dir.path(), &[&reference], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let puts: Vec<_> = front
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.target == tag_path)
            .collect();
        assert_eq!(puts.len(), round + 1);
        let last = puts.last().unwrap();
        if round == 0 {
            assert_eq!(last.header("If-Match"), None, "nothing to match yet");
        } else {
            // docker-registry serves the index with an ETag of its digest.
            let (_, headers, _) = registry.raw_get(&tag_path, OCI_INDEX).await;
            let now = headers.get("etag").map(|v| v.to_str().unwrap().to_string());
            assert!(now.is_some(), "registry sends an ETag");
            let if_match = last.header("If-Match").expect("conditional update");
            assert!(if_match.contains("sha256:"), "{if_match}");
            assert_ne!(Some(if_match.to_string()), now, "matched the old index");
        }
    }
}

/// Run the signing action (container mode) with only the given environment.
fn run_action(dir: &Path, reference: &str, env: &[(&str, String)]) -> (Output, String) {
    let output_file = dir.join("github_output");
    std::fs::write(&output_file, "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    cmd.args(["action", "sign"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("INPUT_IMAGES", reference)
        .env(
            "INPUT_KEY",
            std::fs::read_to_string(dir.join("multi.key")).unwrap(),
        )
        .env(
            "INPUT_CERTIFICATE-CHAIN",
            std::fs::read_to_string(dir.join("multi.crt")).unwrap(),
        )
        .env("INPUT_RECURSIVE", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let outputs = std::fs::read_to_string(&output_file).unwrap();
    (out, outputs)
}

#[tokio::test(flavor = "multi_thread")]
async fn container_action_reads_docker_login_credentials_and_signs_recursively() {
    use base64::Engine as _;
    let (user, pass) = ("ci-user", "s3cret-login-password");
    let registry = Registry::start(RegistryConfig {
        htpasswd: Some((user.into(), pass.into())),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    generate_test_cert(dir.path());
    let (index, _, _) = push_index(&registry, "app/login").await;
    let reference = format!("{}/app/login@{}", registry.host, index.digest);
    // What docker/login-action writes: base64 user:password under the registry host.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let config = json!({"auths": {registry.host.clone(): {"auth": auth}}}).to_string();
    let home = dir.path().join("github-home");

    // No credentials anywhere: refused, and the error says how to log in.
    let (out, _) = run_action(
        dir.path(),
        &reference,
        &[("HOME", home.display().to_string())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("docker login"));

    // DOCKER_CONFIG naming a directory the container sees.
    let direct = dir.path().join("docker-config");
    std::fs::create_dir_all(&direct).unwrap();
    std::fs::write(direct.join("config.json"), &config).unwrap();
    let (out, outputs) = run_action(
        dir.path(),
        &reference,
        &[
            ("HOME", home.display().to_string()),
            ("DOCKER_CONFIG", direct.display().to_string()),
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(outputs.matches("signature-digest").count(), 3, "{outputs}");
    assert!(outputs.contains("linux/arm64/v8"));
    assert!(!text(&out.stdout).contains(pass) && !outputs.contains(pass));

    // DOCKER_CONFIG as the runner host sees it ($RUNNER_TEMP/_github_home/.docker), which the
    // container has at $HOME/.docker.
    std::fs::remove_dir_all(&direct).unwrap();
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(home.join(".docker/config.json"), &config).unwrap();
    let (out, outputs) = run_action(
        dir.path(),
        &reference,
        &[
            ("HOME", home.display().to_string()),
            ("RUNNER_TEMP", "/home/runner/work/_temp".to_string()),
            (
                "DOCKER_CONFIG",
                "/home/runner/work/_temp/_github_home/.docker".to_string(),
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(outputs.matches("signature-digest").count(), 3, "{outputs}");
}
