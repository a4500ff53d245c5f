//! Registry client and OCI layout store against the real `docker-registry` and the notation
//! layout vectors. What the registry stores is read back over raw HTTP, not through our client.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sign_action::oci::layout::{resolve_layout_reference, OciLayoutStore};
use sign_action::oci::manifest::{
    CREATED_ANNOTATION, EMPTY_CONFIG_DIGEST, EMPTY_CONFIG_MEDIA_TYPE, THUMBPRINT_ANNOTATION,
};
use sign_action::oci::registry::{RegistryClient, RegistryOptions};
use sign_action::oci::{
    ArtifactStore, Descriptor, ManifestForm, Reference, Storage, MAX_ENVELOPE_BYTES, OCI_INDEX,
    OCI_MANIFEST, SIGNATURE_ARTIFACT_TYPE,
};
use support::{push_test_image, random_hex, Registry, RegistryConfig};

const JWS: &str = "application/jose+json";
const SUBJECT_V1: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fn fake_envelope() -> Vec<u8> {
    format!(
        r#"{{"payload":"{}","protected":"e30","signature":"AA"}}"#,
        random_hex(24)
    )
    .into_bytes()
}

fn annotations(thumb: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (THUMBPRINT_ANNOTATION.to_string(), format!("[\"{thumb}\"]")),
        (
            CREATED_ANNOTATION.to_string(),
            "2026-11-28T09:00:00Z".to_string(),
        ),
    ])
}

fn reference(reg: &Registry, repo: &str, tag: &str) -> Reference {
    Reference::parse(&format!("{}/{repo}:{tag}", reg.host)).unwrap()
}

fn tag_of(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

async fn raw_json(reg: &Registry, path: &str, accept: &str) -> (u16, Value) {
    let (status, _, body) = reg.raw_get(path, accept).await;
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, v)
}

#[tokio::test]
async fn resolve_tag_and_digest() {
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let a = push_test_image(&client, &reg.host, "app", "v1").await;
    let b = push_test_image(&client, &reg.host, "app", "v2").await;
    assert_ne!(a.digest, b.digest);

    let got = client.resolve(&reference(&reg, "app", "v1")).await.unwrap();
    assert_eq!(got, a);
    let by_digest = Reference::parse(&format!("{}/app@{}", reg.host, b.digest)).unwrap();
    assert_eq!(client.resolve(&by_digest).await.unwrap(), b);
    // Tag and digest: the digest wins.
    let both = Reference::parse(&format!("{}/app:v1@{}", reg.host, b.digest)).unwrap();
    assert_eq!(client.resolve(&both).await.unwrap(), b);
    // One HEAD each for a registry that answers with digest, type and length.
    let fresh = reg.client();
    fresh.resolve(&reference(&reg, "app", "v1")).await.unwrap();
    assert_eq!(fresh.request_count(), 1);
}

#[tokio::test]
async fn unknown_digest_and_tag_are_clear_errors() {
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    push_test_image(&client, &reg.host, "app", "v1").await;
    let missing = format!("sha256:{}", "0".repeat(64));
    let r = Reference::parse(&format!("{}/app@{missing}", reg.host)).unwrap();
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(e.contains("not found") && e.contains(&missing), "{e}");
    let e = client
        .resolve(&reference(&reg, "app", "nope"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("manifest nope") && e.contains("not found"),
        "{e}"
    );
    let e = client
        .fetch_blob(&r, &Descriptor::new(JWS, missing.clone(), 5), 10)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not found") && e.contains(&missing), "{e}");
}

/// Push in `form` and check every field of the stored manifest, blobs and tag index.
async fn push_and_check_form(form: ManifestForm) {
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "signed", "v1").await;
    let r = reference(&reg, "signed", "v1");
    let envelope = fake_envelope();
    let thumb = random_hex(32);
    let pushed = client
        .push_signature(&r, &subject, JWS, &envelope, annotations(&thumb), form)
        .await
        .unwrap();
    assert_eq!(pushed.storage, Storage::TagSchema);
    assert_eq!(pushed.manifest.media_type, OCI_MANIFEST);

    let (status, headers, bytes) = reg
        .raw_get(
            &format!("/v2/signed/manifests/{}", pushed.manifest.digest),
            OCI_MANIFEST,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], OCI_MANIFEST);
    assert_eq!(bytes.len() as u64, pushed.manifest.size);
    assert_eq!(
        format!("sha256:{}", sign_action::crypto::sha256_hex(&bytes)),
        pushed.manifest.digest
    );
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    let (config_type, artifact_type) = match form {
        ManifestForm::Legacy => (SIGNATURE_ARTIFACT_TYPE, None),
        ManifestForm::ArtifactType => (EMPTY_CONFIG_MEDIA_TYPE, Some(SIGNATURE_ARTIFACT_TYPE)),
    };
    let mut want = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": EMPTY_CONFIG_DIGEST, "size": 2},
        "layers": [{
            "mediaType": JWS,
            "digest": format!("sha256:{}", sign_action::crypto::sha256_hex(&envelope)),
            "size": envelope.len(),
        }],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": subject.size},
        "annotations": {
            THUMBPRINT_ANNOTATION: format!("[\"{thumb}\"]"),
            CREATED_ANNOTATION: "2026-11-28T09:00:00Z",
        },
    });
    if let Some(at) = artifact_type {
        want["artifactType"] = json!(at);
    }
    assert_eq!(m, want);

    // Both blobs exist in the repository, byte for byte.
    let (s, _, config) = reg
        .raw_get(&format!("/v2/signed/blobs/{EMPTY_CONFIG_DIGEST}"), "*/*")
        .await;
    assert_eq!((s, config.as_slice()), (200, b"{}".as_slice()));
    let env_digest = m["layers"][0]["digest"].as_str().unwrap();
    let (s, _, env) = reg
        .raw_get(&format!("/v2/signed/blobs/{env_digest}"), "*/*")
        .await;
    assert_eq!((s, env), (200, envelope.clone()));

    // The tag schema index lists the manifest with artifactType and all its annotations.
    let (s, headers, idx) = reg
        .raw_get(
            &format!("/v2/signed/manifests/{}", tag_of(&subject.digest)),
            OCI_INDEX,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(headers["content-type"], OCI_INDEX);
    let idx: Value = serde_json::from_slice(&idx).unwrap();
    assert_eq!(
        idx,
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": pushed.manifest.digest,
                "size": pushed.manifest.size,
                "annotations": want["annotations"],
                "artifactType": SIGNATURE_ARTIFACT_TYPE,
            }],
        })
    );

    // Our own read path finds it and returns verified bytes.
    let listed = client.list_signatures(&r, &subject).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, pushed.manifest.digest);
    assert_eq!(
        listed[0].artifact_type.as_deref(),
        Some(SIGNATURE_ARTIFACT_TYPE)
    );
    assert_eq!(
        listed[0].annotations.as_ref().unwrap()[THUMBPRINT_ANNOTATION],
        format!("[\"{thumb}\"]")
    );
    let mbytes = client.fetch_manifest(&r, &listed[0]).await.unwrap();
    assert_eq!(mbytes, bytes);
    let layer: Descriptor = serde_json::from_value(m["layers"][0].clone()).unwrap();
    let got = client
        .fetch_blob(&r, &layer, MAX_ENVELOPE_BYTES)
        .await
        .unwrap();
    assert_eq!(got, envelope);
}

#[tokio::test]
async fn push_signature_legacy_form() {
    push_and_check_form(ManifestForm::Legacy).await;
}

#[tokio::test]
async fn push_signature_artifact_type_form() {
    push_and_check_form(ManifestForm::ArtifactType).await;
}

#[tokio::test]
async fn second_push_merges_and_keeps_foreign_entries() {
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "merge", "v1").await;
    // A foreign referrer (another tool's artifact) already listed in the tag schema index.
    let foreign = push_test_image(&client, &reg.host, "merge", "other").await;
    let foreign_entry = json!({
        "mediaType": OCI_MANIFEST,
        "digest": foreign.digest,
        "size": foreign.size,
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"x": "y"},
    });
    let pre = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [foreign_entry]});
    let tag = tag_of(&subject.digest);
    let status = reg
        .raw_put(
            &format!("/v2/merge/manifests/{tag}"),
            OCI_INDEX,
            serde_json::to_vec(&pre).unwrap(),
        )
        .await;
    assert_eq!(status, 201);

    let r = reference(&reg, "merge", "v1");
    let env1 = fake_envelope();
    let p1 = client
        .push_signature(
            &r,
            &subject,
            JWS,
            &env1,
            annotations("aa"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    let p2 = client
        .push_signature(
            &r,
            &subject,
            JWS,
            &fake_envelope(),
            annotations("bb"),
            ManifestForm::ArtifactType,
        )
        .await
        .unwrap();
    // Re-pushing identical content changes nothing.
    let p1_again = client
        .push_signature(
            &r,
            &subject,
            JWS,
            &env1,
            annotations("aa"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    assert_eq!(p1_again.manifest, p1.manifest);

    let (s, idx) = raw_json(&reg, &format!("/v2/merge/manifests/{tag}"), OCI_INDEX).await;
    assert_eq!(s, 200);
    let entries = idx["manifests"].as_array().unwrap();
    let digests: Vec<&str> = entries
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        [
            foreign.digest.as_str(),
            &p1.manifest.digest,
            &p2.manifest.digest
        ]
    );
    assert_eq!(entries[0], foreign_entry);
    assert_eq!(entries[1]["artifactType"], SIGNATURE_ARTIFACT_TYPE);
    assert_eq!(entries[2]["artifactType"], SIGNATURE_ARTIFACT_TYPE);
    assert_eq!(entries[2]["annotations"][THUMBPRINT_ANNOTATION], "[\"bb\"]");

    // Listing skips the foreign artifact and keeps index order.
    let listed = client.list_signatures(&r, &subject).await.unwrap();
    let listed: Vec<&str> = listed.iter().map(|d| d.digest.as_str()).collect();
    assert_eq!(listed, [p1.manifest.digest.as_str(), &p2.manifest.digest]);

    // A subject nobody signed has no signatures.
    let other = push_test_image(&client, &reg.host, "merge", "unsigned").await;
    assert!(client.list_signatures(&r, &other).await.unwrap().is_empty());
}

#[tokio::test]
async fn blob_upload_is_skipped_when_present() {
    let reg = Registry::start(RegistryConfig::default());
    let setup = reg.client();
    let subject = push_test_image(&setup, &reg.host, "skip", "v1").await;
    let r = reference(&reg, "skip", "v1");
    let envelope = fake_envelope();

    // Fresh repository content: HEAD+POST+PUT for each of the two blobs, PUT manifest,
    // GET index (404), PUT index, GET index to confirm, GET again after the settle delay.
    let first = reg.client();
    first
        .push_signature(
            &r,
            &subject,
            JWS,
            &envelope,
            annotations("aa"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    assert_eq!(first.request_count(), 11);

    // Same blobs, new manifest (other annotations): only the two HEADs for blobs.
    let second = reg.client();
    second
        .push_signature(
            &r,
            &subject,
            JWS,
            &envelope,
            annotations("bb"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    assert_eq!(second.request_count(), 7);
    assert_eq!(second.list_signatures(&r, &subject).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signers_keep_every_tag_schema_entry() {
    // The registry ignores If-Match: without read-back, merge and a settle re-check about a
    // third of concurrent entries were lost here (measured with 6 signers).
    let reg = Registry::start(RegistryConfig::default());
    let setup = reg.client();
    let subject = push_test_image(&setup, &reg.host, "conc", "v1").await;
    let r = reference(&reg, "conc", "v1");
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let mut o = reg.options();
            o.retries = 3; // the filesystem driver answers 500 to reads racing a tag write
            let client = RegistryClient::new(o).unwrap();
            let (r, subject) = (r.clone(), subject.clone());
            tokio::spawn(async move {
                client
                    .push_signature(
                        &r,
                        &subject,
                        JWS,
                        &fake_envelope(),
                        annotations(&format!("{i}")),
                        ManifestForm::Legacy,
                    )
                    .await
                    .map(|p| p.manifest.digest)
            })
        })
        .collect();
    let mut pushed = Vec::new();
    for t in tasks {
        pushed.push(t.await.unwrap().unwrap());
    }
    let listed: Vec<String> = setup
        .list_signatures(&r, &subject)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.digest)
        .collect();
    pushed.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, pushed);
}

#[tokio::test]
async fn basic_auth_with_htpasswd() {
    let reg = Registry::start(RegistryConfig {
        htpasswd: Some(("alice".into(), "s3cret-pass".into())),
        ..Default::default()
    });
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "private", "v1").await;
    let r = reference(&reg, "private", "v1");
    assert_eq!(client.resolve(&r).await.unwrap(), subject);
    client
        .push_signature(
            &r,
            &subject,
            JWS,
            &fake_envelope(),
            annotations("aa"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    assert_eq!(client.list_signatures(&r, &subject).await.unwrap().len(), 1);

    let mut anon = reg.options();
    anon.credentials.clear();
    let e = RegistryClient::new(anon)
        .unwrap()
        .resolve(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("requires") && e.contains("username and password"),
        "{e}"
    );

    let mut wrong = reg.options();
    wrong.credentials.insert(
        reg.host.clone(),
        sign_action::oci::registry::Credential::Basic {
            username: "alice".into(),
            password: "wrong".into(),
        },
    );
    let e = RegistryClient::new(wrong)
        .unwrap()
        .resolve(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused our credentials"), "{e}");
    assert!(
        !e.contains("wrong"),
        "error must not echo the password: {e}"
    );
}

#[tokio::test]
async fn bearer_token_auth_against_the_real_registry() {
    let tokens = support::TokenServer::start("carol", "tok-pass").await;
    let mut reg = Registry::start(RegistryConfig {
        token_auth: Some(tokens.auth.clone()),
        ..Default::default()
    });
    reg.credentials = Some(("carol".into(), "tok-pass".into()));
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "tokened", "v1").await;
    let r = reference(&reg, "tokened", "v1");
    let p = client
        .push_signature(
            &r,
            &subject,
            JWS,
            &fake_envelope(),
            annotations("aa"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    let listed = client.list_signatures(&r, &subject).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, p.manifest.digest);
    // One token per scope: push (pull,push) and pull; not one per request.
    let token_requests = tokens.server.requests().len();
    assert_eq!(token_requests, 2, "tokens are cached per scope");
    for req in tokens.server.requests() {
        assert!(
            req.target.contains("service=sign-action-test-registry"),
            "{}",
            req.target
        );
    }

    let mut anon = reg.options();
    anon.credentials.clear();
    let e = RegistryClient::new(anon)
        .unwrap()
        .resolve(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("token endpoint answered 401"), "{e}");
}

#[tokio::test]
async fn docker_config_credentials_are_used() {
    let reg = Registry::start(RegistryConfig {
        htpasswd: Some(("bob".into(), "from-config".into())),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:from-config");
    std::fs::write(
        dir.path().join("config.json"),
        json!({"auths": {reg.host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let mut o = reg.options();
    o.credentials.clear();
    o.use_docker_config = true;
    o.docker_config_dir = Some(dir.path().to_path_buf());
    let client = RegistryClient::new(o).unwrap();
    let subject = push_test_image(&client, &reg.host, "viaconfig", "v1").await;
    assert_eq!(
        client
            .resolve(&reference(&reg, "viaconfig", "v1"))
            .await
            .unwrap(),
        subject
    );
}

#[tokio::test]
async fn tls_with_and_without_the_test_ca() {
    let reg = Registry::start(RegistryConfig {
        tls: true,
        ..Default::default()
    });
    assert!(reg.url.starts_with("https://"));
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "tls", "v1").await;
    let r = reference(&reg, "tls", "v1");
    assert_eq!(client.resolve(&r).await.unwrap(), subject);

    let mut no_ca = reg.options();
    no_ca.extra_root_certs_pem.clear();
    let e = RegistryClient::new(no_ca)
        .unwrap()
        .resolve(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot connect") && e.contains("certificate"),
        "{e}"
    );

    // TLS registry asked for over plain HTTP: not a silent downgrade, an error.
    let mut plain = reg.options();
    plain.plain_http = true;
    plain.extra_root_certs_pem.clear();
    assert!(RegistryClient::new(plain)
        .unwrap()
        .resolve(&r)
        .await
        .is_err());
}

#[tokio::test]
async fn plain_http_to_other_hosts_is_refused_before_connecting() {
    let client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        ..Default::default()
    })
    .unwrap();
    let r = Reference::parse("registry.example.invalid/app:v1").unwrap();
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(
        e.contains("refusing plain HTTP to registry.example.invalid"),
        "{e}"
    );
    let s = Descriptor::new(OCI_MANIFEST, SUBJECT_V1, 517);
    let e = client
        .list_signatures(&r, &s)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing plain HTTP"), "{e}");
    assert_eq!(client.request_count(), 0);
}

#[tokio::test]
async fn registry_down_is_a_clear_error() {
    let (host, opts) = {
        let reg = Registry::start(RegistryConfig::default());
        (reg.host.clone(), reg.options())
    }; // dropped: killed and reaped
    let mut opts = opts;
    opts.retries = 1;
    opts.backoff = std::time::Duration::from_millis(10);
    let client = RegistryClient::new(opts).unwrap();
    let r = Reference::parse(&format!("{host}/app:v1")).unwrap();
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("cannot connect to registry {host}")),
        "{e}"
    );
    assert_eq!(
        client.request_count(),
        2,
        "one retry after the connection failure"
    );
}

#[tokio::test]
async fn fetch_checks_size_and_digest() {
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "fetch", "v1").await;
    let r = reference(&reg, "fetch", "v1");
    let env = fake_envelope();
    let p = client
        .push_signature(
            &r,
            &subject,
            JWS,
            &env,
            annotations("aa"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    let env_desc = Descriptor::of_bytes(JWS, &env);
    // Too large for the caller's bound: refused before any request.
    let before = client.request_count();
    let e = client
        .fetch_blob(&r, &env_desc, 10)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit"), "{e}");
    assert_eq!(client.request_count(), before);
    // A descriptor that understates the size: the body overruns it and is refused.
    let mut short = env_desc.clone();
    short.size -= 1;
    let e = client
        .fetch_blob(&r, &short, MAX_ENVELOPE_BYTES)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit"), "{e}");
    // A descriptor that overstates it.
    let mut long = p.manifest.clone();
    long.size += 1;
    let e = client
        .fetch_manifest(&r, &long)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("bytes but its descriptor says"), "{e}");
}

// ------------------------------------------------------------------ OCI layouts

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oci-layouts")
        .join(name)
}

fn layout_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    support::copy_dir(&fixture(name), &path);
    (dir, path)
}

#[tokio::test]
async fn layout_resolve_tag_and_digest() {
    let (_d, path) = layout_copy("e2e-valid-signature");
    let (store, r) = resolve_layout_reference(&format!("{}:v1", path.display())).unwrap();
    let got = store.resolve(&r).await.unwrap();
    assert_eq!(got, Descriptor::new(OCI_MANIFEST, SUBJECT_V1, 517));
    let (store, r) = resolve_layout_reference(&format!("{}@{SUBJECT_V1}", path.display())).unwrap();
    assert_eq!(store.resolve(&r).await.unwrap().digest, SUBJECT_V1);
    let (store, r) = resolve_layout_reference(&format!("{}:v2", path.display())).unwrap();
    let e = store.resolve(&r).await.unwrap_err().to_string();
    assert!(e.contains("tag \"v2\" not found"), "{e}");
    // A registry reference is not accepted by the layout store.
    let e = store
        .resolve(&Reference::parse("ghcr.io/a:v1").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an OCI layout reference"), "{e}");
}

#[tokio::test]
async fn layout_lists_signatures_not_in_the_tag_index() {
    let (_d, path) = layout_copy("e2e-valid-multiple-signatures");
    let store = OciLayoutStore::open(&path).unwrap();
    let (_, r) = resolve_layout_reference(&format!("{}:v1", path.display())).unwrap();
    let subject = store.resolve(&r).await.unwrap();
    let sigs = store.list_signatures(&r, &subject).await.unwrap();
    let digests: Vec<&str> = sigs.iter().map(|d| d.digest.as_str()).collect();
    // Tag schema index entry first, then the one only found by scanning.
    assert_eq!(
        digests,
        [
            "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
            "sha256:c3ebe4a20b6832328fc5078a7795ddc1114b896e13fca2add38109c3866b5fbf",
        ]
    );
    for s in &sigs {
        assert_eq!(s.artifact_type.as_deref(), Some(SIGNATURE_ARTIFACT_TYPE));
        assert_eq!(s.size, 728);
        let m = store.fetch_manifest(&r, s).await.unwrap();
        let m: Value = serde_json::from_slice(&m).unwrap();
        let layer: Descriptor = serde_json::from_value(m["layers"][0].clone()).unwrap();
        let env = store
            .fetch_blob(&r, &layer, MAX_ENVELOPE_BYTES)
            .await
            .unwrap();
        assert_eq!(env.len() as u64, layer.size);
    }
}

#[tokio::test]
async fn open_store_picks_the_store() {
    let (_d, path) = layout_copy("e2e-valid-signature");
    let refs = vec![
        format!("{}:v1", path.display()),
        format!("{}@{SUBJECT_V1}", path.display()),
    ];
    let (store, parsed) =
        sign_action::oci::open_store(RegistryOptions::default(), true, &refs).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(store.resolve(&parsed[0]).await.unwrap().digest, SUBJECT_V1);
    let two = vec![refs[0].clone(), "/elsewhere:v1".to_string()];
    let e = sign_action::oci::open_store(RegistryOptions::default(), true, &two)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("one OCI layout"), "{e}");
    let (_, parsed) = sign_action::oci::open_store(
        RegistryOptions::default(),
        false,
        &["ghcr.io/o/app:v1".to_string()],
    )
    .unwrap();
    assert_eq!(parsed[0].registry, "ghcr.io");
    let e =
        sign_action::oci::open_store(RegistryOptions::default(), false, &["Bad Ref".to_string()])
            .err()
            .unwrap()
            .to_string();
    assert!(e.contains("invalid reference"), "{e}");
}

#[tokio::test]
async fn layout_finds_artifact_type_form() {
    let (_d, path) = layout_copy("e2e-valid-signature-artifacttype");
    let (store, r) = resolve_layout_reference(&format!("{}:v1", path.display())).unwrap();
    let subject = store.resolve(&r).await.unwrap();
    let sigs = store.list_signatures(&r, &subject).await.unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(
        sigs[0].digest,
        "sha256:eb80d69be6bfd731bfeda36c8416ae5ea133780c5edfeb4f14b679ad151a9f76"
    );
}

#[tokio::test]
async fn layout_push_signature_like_notation() {
    let (_d, path) = layout_copy("e2e-valid-signature");
    let (store, r) = resolve_layout_reference(&format!("{}:v1", path.display())).unwrap();
    let subject = store.resolve(&r).await.unwrap();
    let env = fake_envelope();
    let p = store
        .push_signature(
            &r,
            &subject,
            JWS,
            &env,
            annotations("cc"),
            ManifestForm::Legacy,
        )
        .await
        .unwrap();
    assert_eq!(p.storage, Storage::OciLayout);

    let index: Value =
        serde_json::from_slice(&std::fs::read(path.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    // The subject tag and the original signature entry are untouched; the signature
    // manifest is listed; the tag schema index entry was re-pointed, not duplicated.
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert!(entries
        .iter()
        .any(|e| e["digest"] == p.manifest.digest.as_str()));
    let tag = tag_of(SUBJECT_V1);
    let tagged: Vec<&Value> = entries
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .collect();
    assert_eq!(tagged.len(), 1);
    let idx_digest = tagged[0]["digest"].as_str().unwrap();
    let idx_bytes = std::fs::read(path.join("blobs/sha256").join(&idx_digest[7..])).unwrap();
    assert_eq!(tagged[0]["size"], idx_bytes.len());
    let idx: Value = serde_json::from_slice(&idx_bytes).unwrap();
    let listed: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
            p.manifest.digest.as_str()
        ]
    );
    // Concurrent signers on one layout keep every entry.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (store, r, subject, barrier) =
                (store.clone(), r.clone(), subject.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for j in 0..3 {
                    futures::executor::block_on(store.push_signature(
                        &r,
                        &subject,
                        JWS,
                        &fake_envelope(),
                        annotations(&format!("{i}-{j}")),
                        ManifestForm::Legacy,
                    ))
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.list_signatures(&r, &subject).await.unwrap().len(), 26);
    let index: Value =
        serde_json::from_slice(&std::fs::read(path.join("index.json")).unwrap()).unwrap();
    let tag_entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .unwrap()
        .clone();
    let idx_bytes = std::fs::read(
        path.join("blobs/sha256")
            .join(&tag_entry["digest"].as_str().unwrap()[7..]),
    )
    .unwrap();
    let idx: Value = serde_json::from_slice(&idx_bytes).unwrap();
    assert_eq!(
        idx["manifests"].as_array().unwrap().len(),
        26,
        "tag index lost entries"
    );
    // No temporary or lock files left behind.
    for e in std::fs::read_dir(&path).unwrap() {
        let n = e.unwrap().file_name();
        assert!(!n.to_string_lossy().ends_with(".tmp"), "{n:?}");
        assert!(!n.to_string_lossy().ends_with(".lock"), "{n:?}");
    }

    let sigs = store.list_signatures(&r, &subject).await.unwrap();
    assert_eq!(sigs.len(), 26);
    assert_eq!(sigs[1].digest, p.manifest.digest);
    let m = store.fetch_manifest(&r, &sigs[1]).await.unwrap();
    let m: Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(m["config"]["mediaType"], SIGNATURE_ARTIFACT_TYPE);
    assert_eq!(m["subject"]["digest"], SUBJECT_V1);
    let layer: Descriptor = serde_json::from_value(m["layers"][0].clone()).unwrap();
    assert_eq!(
        store
            .fetch_blob(&r, &layer, MAX_ENVELOPE_BYTES)
            .await
            .unwrap(),
        env
    );
    // A tampered blob is refused.
    std::fs::write(path.join("blobs/sha256").join(&layer.digest[7..]), b"x").unwrap();
    assert!(store
        .fetch_blob(&r, &layer, MAX_ENVELOPE_BYTES)
        .await
        .is_err());
}

// ------------------------------------------------------------------ scripted servers
// Behaviours docker-registry 2.8 does not have, against a recorded fake.

use support::fake_http::{FakeResponse, FakeServer};

fn fake_client(retries: u32) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        retries,
        backoff: std::time::Duration::from_millis(5),
        ..Default::default()
    })
    .unwrap()
}

fn manifest_head_ok() -> FakeResponse {
    FakeResponse::new(200)
        .header("Docker-Content-Digest", SUBJECT_V1)
        .header("Content-Type", OCI_MANIFEST)
        .header("Content-Length", "517")
}

#[tokio::test]
async fn bearer_challenge_token_is_fetched_with_basic_and_cached_per_scope() {
    let token_srv = FakeServer::start(|req| {
        use base64::Engine as _;
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pw")
        );
        if req.header("authorization") != Some(want.as_str()) {
            return FakeResponse::new(401);
        }
        FakeResponse::new(200).body(r#"{"token":"tok-123","expires_in":300}"#)
    })
    .await;
    let realm = format!("http://{}/token", token_srv.host);
    let reg = FakeServer::start(move |req| {
        if req.header("authorization") == Some("Bearer tok-123") {
            return manifest_head_ok();
        }
        FakeResponse::new(401).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="{realm}",service="fake-registry",scope="repository:app:pull""#
            ),
        )
    })
    .await;
    let mut o = RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        retries: 0,
        ..Default::default()
    };
    o.credentials.insert(
        reg.host.clone(),
        sign_action::oci::registry::Credential::Basic {
            username: "alice".into(),
            password: "pw".into(),
        },
    );
    let client = RegistryClient::new(o).unwrap();
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    assert_eq!(client.resolve(&r).await.unwrap().digest, SUBJECT_V1);
    assert_eq!(client.request_count(), 3, "401, token, retry");
    assert_eq!(client.resolve(&r).await.unwrap().digest, SUBJECT_V1);
    assert_eq!(
        client.request_count(),
        4,
        "the token is reused for the same scope"
    );

    let tokens = token_srv.requests();
    assert_eq!(tokens.len(), 1);
    assert!(
        tokens[0].target.contains("service=fake-registry"),
        "{}",
        tokens[0].target
    );
    assert!(
        tokens[0].target.contains("scope=repository%3Aapp%3Apull"),
        "{}",
        tokens[0].target
    );
    // The registry itself never saw the password.
    for req in reg.requests() {
        let auth = req.header("authorization").unwrap_or("");
        assert!(
            !auth.starts_with("Basic"),
            "basic credentials sent to the registry"
        );
    }

    // Wrong password at the token server: a clear error, no secret in it.
    let mut o = RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        retries: 0,
        ..Default::default()
    };
    o.credentials.insert(
        reg.host.clone(),
        sign_action::oci::registry::Credential::Basic {
            username: "alice".into(),
            password: "not-it".into(),
        },
    );
    let e = RegistryClient::new(o)
        .unwrap()
        .resolve(&r)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("token endpoint answered 401"), "{e}");
    assert!(!e.contains("not-it"), "{e}");
}

#[tokio::test]
async fn identity_token_is_exchanged_at_the_realm() {
    let token_srv = FakeServer::start(|req| {
        let form = String::from_utf8_lossy(&req.body).to_string();
        let ok = req.method == "POST"
            && form.contains("grant_type=refresh_token")
            && form.contains("refresh_token=refresh-abc")
            && form.contains("service=svc")
            && form.contains("scope=repository%3Aapp%3Apull");
        if !ok {
            return FakeResponse::new(400);
        }
        FakeResponse::new(200).body(r#"{"access_token":"acc-1"}"#)
    })
    .await;
    let realm = format!("http://{}/oauth2/token", token_srv.host);
    let reg = FakeServer::start(move |req| {
        if req.header("authorization") == Some("Bearer acc-1") {
            return manifest_head_ok();
        }
        FakeResponse::new(401).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{realm}",service="svc""#),
        )
    })
    .await;
    let mut o = RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        retries: 0,
        ..Default::default()
    };
    o.credentials.insert(
        reg.host.clone(),
        sign_action::oci::registry::Credential::IdentityToken("refresh-abc".into()),
    );
    let client = RegistryClient::new(o).unwrap();
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    assert_eq!(client.resolve(&r).await.unwrap().digest, SUBJECT_V1);
    assert_eq!(token_srv.requests().len(), 1);
}

#[tokio::test]
async fn token_realm_over_plain_http_elsewhere_is_refused() {
    let reg = FakeServer::start(|_| {
        FakeResponse::new(401).header(
            "WWW-Authenticate",
            r#"Bearer realm="http://auth.example.invalid/token",service="x""#,
        )
    })
    .await;
    let client = fake_client(0);
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(
        e.contains("refusing plain HTTP to auth.example.invalid"),
        "{e}"
    );
    assert_eq!(client.request_count(), 1);
}

#[tokio::test]
async fn retries_on_429_and_5xx() {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = n.clone();
    let reg =
        FakeServer::start(
            move |_| match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => FakeResponse::new(429).header("Retry-After", "0"),
                1 => FakeResponse::new(503),
                _ => manifest_head_ok(),
            },
        )
        .await;
    let client = fake_client(3);
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    assert_eq!(client.resolve(&r).await.unwrap().digest, SUBJECT_V1);
    assert_eq!(client.request_count(), 3);
    let ua = format!("sign-action/{}", env!("CARGO_PKG_VERSION"));
    assert!(reg
        .requests()
        .iter()
        .all(|q| q.header("user-agent") == Some(ua.as_str())));

    let down = FakeServer::start(|_| FakeResponse::new(502).body("bad gateway")).await;
    let client = fake_client(2);
    let r = Reference::parse(&format!("{}/app:v1", down.host)).unwrap();
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(e.contains("502"), "{e}");
    assert_eq!(client.request_count(), 3, "first try and two retries");
}

fn sig_entry(digest_char: char, artifact_type: &str) -> Value {
    json!({
        "mediaType": OCI_MANIFEST,
        "digest": format!("sha256:{}", digest_char.to_string().repeat(64)),
        "size": 700,
        "artifactType": artifact_type,
        "annotations": {THUMBPRINT_ANNOTATION: "[\"ab\"]"},
    })
}

#[tokio::test]
async fn referrers_api_pages_are_followed_and_filtered() {
    let reg = FakeServer::start(|req| {
        let page = |entries: Vec<Value>| {
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
            )
            .unwrap()
        };
        if req.path().starts_with("/v2/app/manifests/sha256-") {
            return FakeResponse::new(404);
        }
        if !req.path().starts_with("/v2/app/referrers/") {
            return FakeResponse::new(500);
        }
        if req.target.contains("page=2") {
            FakeResponse::new(200)
                .header("Content-Type", OCI_INDEX)
                .body(page(vec![sig_entry('c', SIGNATURE_ARTIFACT_TYPE)]))
        } else {
            assert!(req
                .target
                .contains("artifactType=application%2Fvnd.cncf.notary.signature"));
            FakeResponse::new(200)
                .header("Content-Type", OCI_INDEX)
                .header("Link", &format!("<{}?page=2>; rel=\"next\"", req.path()))
                .body(page(vec![
                    sig_entry('a', SIGNATURE_ARTIFACT_TYPE),
                    sig_entry('b', "application/vnd.example.sbom"),
                    sig_entry('a', SIGNATURE_ARTIFACT_TYPE),
                ]))
        }
    })
    .await;
    let client = fake_client(0);
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    let subject = Descriptor::new(OCI_MANIFEST, SUBJECT_V1, 517);
    let got = client.list_signatures(&r, &subject).await.unwrap();
    let digests: Vec<String> = got.iter().map(|d| d.digest[7..8].to_string()).collect();
    assert_eq!(
        digests,
        ["a", "c"],
        "filtered client-side, deduplicated, both pages"
    );
    // Not yet confirmed in this run (no push showed the API lists what it accepts): the
    // tag schema is read too, in case the API's answer omits signatures.
    let reqs = reg.requests();
    assert_eq!(reqs.len(), 3, "two pages and the tag schema index");
    assert_eq!(
        reqs[2].path(),
        format!("/v2/app/manifests/{}", SUBJECT_V1.replace(':', "-"))
    );
}

#[tokio::test]
async fn oci_subject_answer_means_no_tag_schema_update() {
    // The registry lists what it accepted: the first push confirms the API for the run.
    let pushed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = pushed.clone();
    let reg = FakeServer::start(move |req| match (req.method.as_str(), req.path()) {
        ("HEAD", p) if p.contains("/blobs/") => FakeResponse::new(200),
        ("PUT", p) if p.contains("/manifests/sha256:") => {
            *seen.lock().unwrap() = p.rsplit('/').next().unwrap().to_string();
            FakeResponse::new(201).header("OCI-Subject", SUBJECT_V1)
        }
        ("GET", p) if p.starts_with("/v2/app/referrers/") => {
            let digest = seen.lock().unwrap().clone();
            let mut entry = sig_entry('a', SIGNATURE_ARTIFACT_TYPE);
            entry["digest"] = Value::String(digest);
            FakeResponse::new(200)
                .header("Content-Type", OCI_INDEX)
                .body(
                    serde_json::to_vec(
                        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}),
                    )
                    .unwrap(),
                )
        }
        _ => FakeResponse::new(500),
    })
    .await;
    let client = fake_client(0);
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    let subject = Descriptor::new(OCI_MANIFEST, SUBJECT_V1, 517);
    let p = client
        .push_signature(
            &r,
            &subject,
            JWS,
            &fake_envelope(),
            annotations("aa"),
            ManifestForm::ArtifactType,
        )
        .await
        .unwrap();
    assert_eq!(p.storage, Storage::ReferrersApi);
    assert_eq!(*pushed.lock().unwrap(), p.manifest.digest);
    let reqs = reg.requests();
    assert_eq!(
        reqs.len(),
        4,
        "two blob HEADs, the manifest PUT, one referrers check"
    );
    assert!(reqs[3].path().starts_with("/v2/app/referrers/"));
    assert_eq!(client.referrers_usable(&reg.host), Some(true));
    // Confirmed for this registry: a second signature needs no second check.
    client
        .push_signature(
            &r,
            &subject,
            JWS,
            &fake_envelope(),
            annotations("bb"),
            ManifestForm::ArtifactType,
        )
        .await
        .unwrap();
    assert_eq!(reg.requests().len(), 7);
    let put = &reqs[2];
    assert_eq!(put.header("content-type"), Some(OCI_MANIFEST));
    let m: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(m["artifactType"], SIGNATURE_ARTIFACT_TYPE);
    assert_eq!(m["subject"]["digest"], SUBJECT_V1);
}

#[tokio::test]
async fn head_without_digest_falls_back_to_get() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let digest = format!("sha256:{}", sign_action::crypto::sha256_hex(&body));
    let b = body.clone();
    let reg = FakeServer::start(move |req| match req.method.as_str() {
        "HEAD" => FakeResponse::new(200).header("Content-Type", OCI_MANIFEST),
        _ => FakeResponse::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(b.clone()),
    })
    .await;
    let client = fake_client(0);
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    let got = client.resolve(&r).await.unwrap();
    assert_eq!(
        got,
        Descriptor::new(OCI_MANIFEST, digest.clone(), body.len() as u64)
    );
    assert_eq!(client.request_count(), 2);
    // Asked by digest, answered with other content: refused.
    let other = format!("sha256:{}", "e".repeat(64));
    let r = Reference::parse(&format!("{}/app@{other}", reg.host)).unwrap();
    let e = client.resolve(&r).await.unwrap_err().to_string();
    assert!(e.contains(&digest) && e.contains(&other), "{e}");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let big = vec![b'x'; 64 * 1024];
    let reg = FakeServer::start(move |_| FakeResponse::new(200).body(big.clone())).await;
    let client = fake_client(0);
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    let d = Descriptor::new(JWS, format!("sha256:{}", "d".repeat(64)), 1000);
    let e = client
        .fetch_blob(&r, &d, MAX_ENVELOPE_BYTES)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("exceeds the 1000-byte limit"), "{e}");
}

#[tokio::test]
async fn cross_host_redirect_drops_credentials() {
    let blob = fake_envelope();
    let desc = Descriptor::of_bytes(JWS, &blob);
    let body = blob.clone();
    let storage = FakeServer::start(move |_| FakeResponse::new(200).body(body.clone())).await;
    let target = format!("http://{}/bucket/object", storage.host);
    let reg = FakeServer::start(move |_| FakeResponse::new(307).header("Location", &target)).await;
    let mut o = RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        retries: 0,
        ..Default::default()
    };
    o.credentials.insert(
        reg.host.clone(),
        sign_action::oci::registry::Credential::Bearer("secret-token".into()),
    );
    let client = RegistryClient::new(o).unwrap();
    let r = Reference::parse(&format!("{}/app:v1", reg.host)).unwrap();
    assert_eq!(
        client
            .fetch_blob(&r, &desc, MAX_ENVELOPE_BYTES)
            .await
            .unwrap(),
        blob
    );
    assert_eq!(
        reg.requests()[0].header("authorization"),
        Some("Bearer secret-token")
    );
    let s = storage.requests();
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].header("authorization"),
        None,
        "token leaked to the redirect target"
    );
}

// ------------------------------------------------------------------ harness self-checks

fn spki_key_spec(cert_pem: &Path) -> sign_action::crypto::KeySpec {
    use der::{Decode, Encode};
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_file(cert_pem).unwrap();
    let cert = x509_cert::Certificate::from_der(der.as_ref()).unwrap();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    sign_action::crypto::KeySpec::from_spki_der(&spki).unwrap()
}

#[test]
fn harness_makes_all_six_key_types() {
    use sign_action::crypto::KeySpec::*;
    let dir = tempfile::tempdir().unwrap();
    for spec in [Rsa2048, Rsa3072, Rsa4096, EcP256, EcP384, EcP521] {
        let k = support::make_test_key(dir.path(), spec);
        assert_eq!(spki_key_spec(&k.cert), spec);
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&k.cert)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("Key Usage: critical"), "{text}");
        assert!(text.contains("Code Signing"), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(std::fs::read_to_string(&k.key)
            .unwrap()
            .contains("BEGIN PRIVATE KEY"));
    }
    let c = support::make_test_chain(dir.path(), "chained", EcP384);
    assert_eq!(spki_key_spec(&c.cert), EcP384);
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-purpose", "any", "-CAfile"])
        .arg(&c.root)
        .arg(&c.cert)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let chain = std::fs::read_to_string(&c.chain).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
}
