//! Benchmark: signing and verification against the real local registry.
//!
//! Run with `cargo bench --bench sign_verify` (or `scripts/bench`). It starts
//! `docker-registry` on 127.0.0.1, pushes test images and reports, for each operation, the
//! median wall time, that time as a ratio to a baseline measured in the same run (one
//! manifest HEAD round trip to the same registry), and the number of HTTP requests.
//! Not a test: numbers are printed, nothing is asserted.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sign_action::crypto::{LocalSigner, Signer};
use sign_action::oci::{ArtifactStore, Reference};
use sign_action::policy::store::TrustStore;
use sign_action::policy::TrustPolicyDocument;
use sign_action::sign::{self, SignSettings, SignTarget};
use sign_action::verify::{self, EffectivePolicy, VerifySettings, VerifyTarget};

const ROUNDS: usize = 15;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let registry = support::Registry::start(support::RegistryConfig::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = sign_action::testcert::generate_test_certificate("bench", dir.path())
        .expect("test certificate");
    let chain = sign_action::x509::parse_certificates(
        &std::fs::read(&generated.cert_path).unwrap(),
        "bench certificate",
    )
    .unwrap();
    let signer: Arc<dyn Signer> = Arc::new(
        LocalSigner::from_pem(
            &std::fs::read(&generated.key_path).unwrap(),
            None,
            chain.iter().map(|c| c.der().to_vec()).collect(),
        )
        .unwrap(),
    );
    let setup = registry.client();

    // Baseline: one manifest HEAD round trip through a raw HTTP client.
    let subject = support::push_test_image(&setup, &registry.host, "bench/app", "v1").await;
    let raw = registry.raw_http();
    let url = format!("{}/v2/bench/app/manifests/{}", registry.url, subject.digest);
    let mut baseline = Vec::new();
    for _ in 0..ROUNDS * 4 {
        let t = Instant::now();
        let resp = raw
            .head(&url)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .expect("HEAD");
        assert!(resp.status().is_success());
        baseline.push(t.elapsed());
    }
    let baseline = median(baseline);
    println!(
        "baseline: one manifest HEAD round trip = {:.2} ms",
        ms(baseline)
    );

    // Sign one image, ROUNDS times, each with a fresh client (as a CLI run would have).
    let settings = SignSettings::default();
    let mut times = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..ROUNDS {
        let client = Arc::new(registry.client());
        let reference =
            Reference::parse(&format!("{}/bench/app@{}", registry.host, subject.digest)).unwrap();
        let target = SignTarget {
            input: reference.to_string(),
            reference,
            platform: None,
        };
        let store: Arc<dyn ArtifactStore> = client.clone();
        let t = Instant::now();
        let report = sign::sign_all(
            store,
            vec![target],
            signer.clone(),
            None,
            &settings,
            &|_| {},
        )
        .await;
        times.push(t.elapsed());
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        requests.push(client.request_count());
    }
    let sign_time = median(times);
    println!(
        "sign one image: median {:.2} ms = {:.1}x baseline; HTTP requests per signature: {} (min {}, max {})",
        ms(sign_time),
        ratio(sign_time, baseline),
        requests[requests.len() / 2],
        requests.iter().min().unwrap(),
        requests.iter().max().unwrap()
    );

    // Verify one image and 100 images in one run.
    let policy_doc = TrustPolicyDocument::load_file(&generated.trust_policy_path).unwrap();
    let trust_store = TrustStore::open(dir.path()).unwrap();
    let statement = policy_doc
        .select("*")
        .or_else(|_| policy_doc.select(&format!("{}/bench/app", registry.host)))
        .unwrap();
    let policy = Arc::new(EffectivePolicy::from_statement(statement, &trust_store).unwrap());
    let verify_settings = VerifySettings {
        revocation: Some(Arc::new(
            sign_action::revocation::RevocationChecker::new().unwrap(),
        )),
        ..VerifySettings::default()
    };

    let mut refs = Vec::new();
    for i in 0..100 {
        let repo = format!("bench/many{i}");
        let s = support::push_test_image(&setup, &registry.host, &repo, "v1").await;
        refs.push(format!("{}/{repo}@{}", registry.host, s.digest));
    }
    let targets: Vec<SignTarget> = refs
        .iter()
        .map(|r| SignTarget {
            input: r.clone(),
            reference: Reference::parse(r).unwrap(),
            platform: None,
        })
        .collect();
    let client: Arc<dyn ArtifactStore> = Arc::new(registry.client());
    let report = sign::sign_all(client, targets, signer.clone(), None, &settings, &|_| {}).await;
    assert!(report.failures.is_empty());

    for (label, count) in [
        ("verify one image", 1usize),
        ("verify 100 images in one run", 100),
    ] {
        let mut times = Vec::new();
        let mut requests = 0;
        let rounds = if count == 1 { ROUNDS } else { 3 };
        for _ in 0..rounds {
            let client = Arc::new(registry.client());
            let store: Arc<dyn ArtifactStore> = client.clone();
            let targets = refs[..count]
                .iter()
                .map(|r| VerifyTarget {
                    input: r.clone(),
                    reference: Reference::parse(r).unwrap(),
                    policy: policy.clone(),
                })
                .collect();
            let t = Instant::now();
            let results = verify::verify_all(store, targets, &verify_settings, 4).await;
            times.push(t.elapsed());
            assert!(results.iter().all(|r| r.verified), "{results:?}");
            requests = client.request_count();
        }
        let t = median(times);
        println!(
            "{label}: median {:.2} ms = {:.1}x baseline ({:.2} ms and {:.1} HTTP requests per artifact)",
            ms(t),
            ratio(t, baseline),
            ms(t) / count as f64,
            requests as f64 / count as f64
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
