//! Canary secrets through every command and both action modes, in success and failure: none
//! may appear in stdout, stderr, the `GITHUB_OUTPUT` file, the step summary or an error
//! message (which reach one of those). The only allowed appearance is the action's own
//! `::add-mask::` registration, which tells the runner to hide the value.
//!
//! Also: credentials never follow a redirect to another host, end to end through the binary.

#[path = "support/e2e.rs"]
mod e2e;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use e2e::{text, TrustConfig};
use sign_action::crypto::KeySpec;
use support::{make_named_test_key, push_test_image, Registry, RegistryConfig};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "canary-token";

/// Everything a run could show a user or a log.
struct Captured {
    what: String,
    stdout: String,
    stderr: String,
    github_output: String,
    step_summary: String,
    success: bool,
}

impl Captured {
    fn of(what: &str, out: &Output, github_output: &str, step_summary: &str) -> Captured {
        Captured {
            what: what.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            github_output: github_output.to_string(),
            step_summary: step_summary.to_string(),
            success: out.status.success(),
        }
    }
}

/// No secret of `secrets` (name, value) appears anywhere in `run`, apart from `::add-mask::`
/// lines on stdout. Extend the secret list, not this function, to cover a new kind of secret.
fn assert_no_secrets_leak(run: &Captured, secrets: &[(String, String)]) {
    let stdout: String = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for (where_, content) in [
        ("stdout", stdout.as_str()),
        ("stderr", run.stderr.as_str()),
        ("GITHUB_OUTPUT", run.github_output.as_str()),
        ("step summary", run.step_summary.as_str()),
    ] {
        for (name, secret) in secrets {
            assert!(
                !content.contains(secret.as_str()),
                "{}: the {name} leaked into {where_}:\n{content}",
                run.what
            );
        }
    }
}

/// The secrets of a key file: the whole PEM and each line of its base64 body.
fn pem_secrets(name: &str, pem_file: &Path) -> Vec<(String, String)> {
    let pem = std::fs::read_to_string(pem_file).unwrap();
    let mut out = vec![(format!("{name} (whole PEM)"), pem.trim().to_string())];
    for (i, line) in pem
        .lines()
        .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
        .enumerate()
    {
        out.push((format!("{name} PEM line {i}"), line.to_string()));
    }
    out
}

fn named(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// A SoftHSM2 token holding `key` (PKCS#8 PEM), in its own temp directory.
struct Hsm {
    _dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Hsm {
    fn with_key(key: &Path, pin: &str) -> Hsm {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(args)
                .output()
                .expect("softhsm2-util (install softhsm2)");
            assert!(
                out.status.success(),
                "softhsm2-util {args:?}: {}",
                text(&out)
            );
        };
        run(&[
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "12345678",
            "--pin",
            pin,
        ]);
        run(&[
            "--import",
            key.to_str().unwrap(),
            "--token",
            TOKEN,
            "--label",
            "canary-key",
            "--id",
            "0a",
            "--pin",
            pin,
        ]);
        Hsm { _dir: dir, conf }
    }
}

/// The binary with no ambient secrets, config or GitHub environment.
fn bin() -> Command {
    let mut cmd = e2e::bin();
    cmd.env_remove("SIGN_ACTION_PKCS11_PIN")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS");
    cmd
}

/// Run `cmd` as an action step with fresh output and summary files.
fn run_action(dir: &Path, what: &str, cmd: &mut Command) -> Captured {
    let output = dir.join(format!("output-{}", support::random_hex(4)));
    let summary = dir.join(format!("summary-{}", support::random_hex(4)));
    std::fs::write(&output, "").unwrap();
    std::fs::write(&summary, "").unwrap();
    let out = cmd
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    Captured::of(
        what,
        &out,
        &std::fs::read_to_string(&output).unwrap(),
        &std::fs::read_to_string(&summary).unwrap(),
    )
}

fn run_cli(what: &str, cmd: &mut Command) -> Captured {
    Captured::of(what, &cmd.output().unwrap(), "", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_secrets_never_appear_in_any_output_of_any_command() {
    let registry_password = "canary-registry-pass-7Hq2x";
    let wrong_registry_password = "canary-wrong-registry-pass-Zk91";
    let key_password = "canary-key-pass-Vw3m";
    let wrong_key_password = "canary-wrong-key-pass-Lp0s";
    let pin = "canary-pin-40417";
    let wrong_pin = "canary-wrong-pin-88213";
    let user = "signer";
    let reg = Registry::start(RegistryConfig {
        htpasswd: Some((user.into(), registry_password.into())),
        ..Default::default()
    });
    let subject = push_test_image(&reg.client(), &reg.host, "canary/app", "v1").await;
    let reference = format!("{}/canary/app@{}", reg.host, subject.digest);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = make_named_test_key(d, "canary", KeySpec::EcP256);
    let enc_key = d.join("enc.key");
    let st = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(&k.key)
        .arg("-out")
        .arg(&enc_key)
        .arg("-passout")
        .arg(format!("pass:{key_password}"))
        .status()
        .unwrap();
    assert!(st.success());
    let hsm = Hsm::with_key(&k.key, pin);

    let basic = |p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{user}:{p}"));
    let mut secrets = named(&[
        ("registry password", registry_password),
        ("wrong registry password", wrong_registry_password),
        ("key password", key_password),
        ("wrong key password", wrong_key_password),
        ("PKCS#11 PIN", pin),
        ("wrong PKCS#11 PIN", wrong_pin),
    ]);
    // The basic credential as it travels in an Authorization header.
    secrets.push(("basic credential".into(), basic(registry_password)));
    secrets.push((
        "wrong basic credential".into(),
        basic(wrong_registry_password),
    ));
    secrets.extend(pem_secrets("private key", &k.key));
    secrets.extend(pem_secrets("encrypted key", &enc_key));

    let config = TrustConfig::new();
    config.add_store("ca", "one", &[&k.root]);
    let policy = config.policy("p.json", "strict", &["ca:one"], None);
    let mut runs: Vec<Captured> = Vec::new();

    // ---- CLI sign: file key, PKCS#11 token; success and each credential wrong.
    let sign = |key_pass: &str, reg_pass: &str, output: &str| {
        let mut c = bin();
        c.arg("sign")
            .arg(&reference)
            .arg("--key")
            .arg(&enc_key)
            .arg("--cert")
            .arg(&k.chain)
            .args(["--no-revocation-check", "-u", user, "--output", output])
            .env("SIGN_ACTION_KEY_PASSWORD", key_pass)
            .env("SIGN_ACTION_REGISTRY_PASSWORD", reg_pass);
        c
    };
    for output in ["text", "json"] {
        runs.push(run_cli(
            "sign",
            &mut sign(key_password, registry_password, output),
        ));
        runs.push(run_cli(
            "sign, wrong key password",
            &mut sign(wrong_key_password, registry_password, output),
        ));
        runs.push(run_cli(
            "sign, registry 401",
            &mut sign(key_password, wrong_registry_password, output),
        ));
    }
    // The password on the command line instead of the environment.
    runs.push(run_cli(
        "sign, wrong password arguments",
        bin()
            .arg("sign")
            .arg(&reference)
            .arg("--key")
            .arg(&enc_key)
            .arg("--cert")
            .arg(&k.chain)
            .args(["--no-revocation-check", "-u", user])
            .args(["--key-password", wrong_key_password])
            .args(["--password", wrong_registry_password]),
    ));
    // A key handed over as the certificate chain: its parse error must not echo it.
    runs.push(run_cli(
        "sign, key as chain",
        bin()
            .arg("sign")
            .arg(&reference)
            .arg("--key")
            .arg(&k.key)
            .arg("--cert")
            .arg(&k.key)
            .args(["-u", user])
            .env("SIGN_ACTION_REGISTRY_PASSWORD", registry_password),
    ));
    let sign_pkcs11 = |pin: &str| {
        let mut c = bin();
        c.arg("sign")
            .arg(&reference)
            .args(["--pkcs11-module", MODULE, "--pkcs11-token", TOKEN])
            .args(["--pkcs11-key", "label:canary-key", "--cert"])
            .arg(&k.chain)
            .args(["--no-revocation-check", "-u", user])
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("SIGN_ACTION_PKCS11_PIN", pin)
            .env("SIGN_ACTION_REGISTRY_PASSWORD", registry_password);
        c
    };
    runs.push(run_cli("sign with PKCS#11", &mut sign_pkcs11(pin)));
    runs.push(run_cli("sign, wrong PIN", &mut sign_pkcs11(wrong_pin)));

    // ---- CLI verify, list, inspect, with the right and a wrong registry password.
    for (label, pass) in [
        ("", registry_password),
        (", registry 401", wrong_registry_password),
    ] {
        for output in ["text", "json"] {
            runs.push(run_cli(
                &format!("verify {output}{label}"),
                bin()
                    .arg("verify")
                    .arg(&reference)
                    .arg("--trust-policy")
                    .arg(&policy)
                    .arg("--trust-store")
                    .arg(config.root())
                    .args(["--output", output, "-u", user])
                    .env("SIGN_ACTION_REGISTRY_PASSWORD", pass),
            ));
            for cmd in ["list", "inspect"] {
                runs.push(run_cli(
                    &format!("{cmd} {output}{label}"),
                    bin()
                        .arg(cmd)
                        .arg(&reference)
                        .args(["--output", output, "-u", user])
                        .env("SIGN_ACTION_REGISTRY_PASSWORD", pass),
                ));
            }
        }
    }

    // ---- cert generate-test: the key it writes must not be printed.
    let generated = d.join("generated");
    runs.push(run_cli(
        "cert generate-test",
        bin()
            .args(["cert", "generate-test", "canary-gen", "--dir"])
            .arg(&generated),
    ));
    let generated_key = walk(&generated)
        .into_iter()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("PRIVATE KEY")))
        .expect("generate-test wrote a private key");
    secrets.extend(pem_secrets("generated key", &generated_key));

    // ---- Action sign: key content and password, PKCS#11 PIN; success and failures.
    let key_pem = std::fs::read_to_string(&enc_key).unwrap();
    let chain_pem = std::fs::read_to_string(&k.chain).unwrap();
    let action_sign = |key_pass: &str, reg_pass: &str| {
        let mut c = bin();
        c.args(["action", "sign"])
            .env("INPUT_IMAGES", &reference)
            .env("INPUT_KEY", &key_pem)
            .env("INPUT_KEY-PASSWORD", key_pass)
            .env("INPUT_CERTIFICATE-CHAIN", &chain_pem)
            .env("INPUT_REGISTRY-USERNAME", user)
            .env("INPUT_REGISTRY-PASSWORD", reg_pass);
        c
    };
    runs.push(run_action(
        d,
        "action sign",
        &mut action_sign(key_password, registry_password),
    ));
    runs.push(run_action(
        d,
        "action sign, wrong key password",
        &mut action_sign(wrong_key_password, registry_password),
    ));
    runs.push(run_action(
        d,
        "action sign, registry 401",
        &mut action_sign(key_password, wrong_registry_password),
    ));
    let action_pkcs11 = |pin: &str| {
        let mut c = bin();
        c.args(["action", "sign"])
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("INPUT_IMAGES", &reference)
            .env("INPUT_PKCS11-MODULE", MODULE)
            .env("INPUT_PKCS11-TOKEN", format!("label:{TOKEN}"))
            .env("INPUT_PKCS11-KEY", "canary-key")
            .env("INPUT_PKCS11-PIN", pin)
            .env("INPUT_CERTIFICATE-CHAIN", &chain_pem)
            .env("INPUT_REGISTRY-USERNAME", user)
            .env("INPUT_REGISTRY-PASSWORD", registry_password);
        c
    };
    runs.push(run_action(
        d,
        "action sign with PKCS#11",
        &mut action_pkcs11(pin),
    ));
    runs.push(run_action(
        d,
        "action sign, wrong PIN",
        &mut action_pkcs11(wrong_pin),
    ));

    // ---- Action verify.
    let policy_json = std::fs::read_to_string(&policy).unwrap();
    for (label, pass) in [
        ("", registry_password),
        (", registry 401", wrong_registry_password),
    ] {
        runs.push(run_action(
            d,
            &format!("action verify{label}"),
            bin()
                .args(["action", "verify"])
                .env("INPUT_IMAGES", &reference)
                .env("INPUT_TRUST-POLICY", &policy_json)
                .env("INPUT_TRUST-STORE", config.root())
                .env("INPUT_REGISTRY-USERNAME", user)
                .env("INPUT_REGISTRY-PASSWORD", pass),
        ));
    }

    // Each run did what it should (so the outputs checked are the real success and failure
    // paths), and nothing leaked.
    let expect_success = |what: &str| {
        !["wrong", "401", "key as chain"]
            .iter()
            .any(|f| what.contains(f))
    };
    for run in &runs {
        assert_eq!(
            run.success,
            expect_success(&run.what),
            "{}: unexpected outcome\nstdout:\n{}\nstderr:\n{}",
            run.what,
            run.stdout,
            run.stderr
        );
        assert_no_secrets_leak(run, &secrets);
    }
    // The failure paths said what was wrong (so their messages were checked, not empty).
    for (what, needle) in [
        ("sign, registry 401", user),
        ("sign, wrong PIN", "PIN"),
        ("action sign, wrong PIN", "PIN"),
    ] {
        let run = runs.iter().find(|r| r.what == what).unwrap();
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            all.contains(needle) || all.contains(&reg.host),
            "{what}: {all}"
        );
    }
    // The secrets did reach the action: it registered masks for them (the one allowed place).
    let masked = &runs
        .iter()
        .find(|r| r.what == "action sign")
        .unwrap()
        .stdout;
    for s in [key_password, registry_password] {
        assert!(masked.contains(&format!("::add-mask::{s}")), "{masked}");
    }
    let action_runs = runs.iter().filter(|r| r.what.starts_with("action")).count();
    eprintln!(
        "canary: {} runs ({} in action mode), {} secrets checked in stdout, stderr, GITHUB_OUTPUT and the step summary",
        runs.len(),
        action_runs,
        secrets.len()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_to_the_token_realm_but_not_to_a_redirected_blob_host() {
    use sign_action::oci::reference::Reference;
    use sign_action::oci::ArtifactStore;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use support::fake_http::{FakeResponse, FakeServer};
    let (user, password) = ("redirect-user", "canary-redirect-pass-Qz8");
    let tokens = support::TokenServer::start(user, password).await;
    let mut reg = Registry::start(RegistryConfig {
        token_auth: Some(tokens.auth.clone()),
        ..Default::default()
    });
    reg.credentials = Some((user.into(), password.into()));
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "redirect/app", "v1").await;
    let dir = tempfile::tempdir().unwrap();
    let k = make_named_test_key(dir.path(), "redirect", KeySpec::EcP256);
    let direct = format!("{}/redirect/app@{}", reg.host, subject.digest);
    let mut sign = bin();
    sign.arg("sign")
        .arg(&direct)
        .arg("--key")
        .arg(&k.key)
        .arg("--cert")
        .arg(&k.chain)
        .args(["--no-revocation-check", "-u", user])
        .env("SIGN_ACTION_REGISTRY_PASSWORD", password);
    let out = sign.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // A blob storage host on another port serving the signature's blobs, which the front
    // redirects every blob GET to.
    let blobs: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let r = Reference::parse(&direct).unwrap();
    for sig in client.list_signatures(&r, &subject).await.unwrap() {
        let manifest = client.fetch_manifest(&r, &sig).await.unwrap();
        let m: sign_action::oci::manifest::ImageManifest =
            serde_json::from_slice(&manifest).unwrap();
        for desc in std::iter::once(m.config).chain(m.layers) {
            let bytes = client.fetch_blob(&r, &desc, 1 << 20).await.unwrap();
            blobs.lock().unwrap().insert(desc.digest.clone(), bytes);
        }
    }
    let served = blobs.clone();
    let storage = FakeServer::start(move |req| {
        let digest = req.path().rsplit('/').next().unwrap_or("").to_string();
        match served.lock().unwrap().get(&digest) {
            Some(b) => FakeResponse::new(200)
                .header("Content-Type", "application/octet-stream")
                .body(b.clone()),
            None => FakeResponse::new(404),
        }
    })
    .await;
    let front =
        support::registry_front::RegistryFront::start_redirecting_blobs(&reg.host, &storage.host);
    let through = format!("{}/redirect/app@{}", front.host, subject.digest);

    let config = TrustConfig::new();
    config.add_store("ca", "one", &[&k.root]);
    let policy = config.policy("p.json", "strict", &["ca:one"], None);
    let tokens_before = tokens.server.requests().len();
    for cmd in ["verify", "inspect"] {
        let mut c = bin();
        c.arg(cmd)
            .arg(&through)
            .args(["-u", user, "--output", "json"]);
        if cmd == "verify" {
            c.arg("--trust-policy")
                .arg(&policy)
                .arg("--trust-store")
                .arg(config.root());
        }
        let out = c
            .env("SIGN_ACTION_REGISTRY_PASSWORD", password)
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}: {}", text(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains(password));
    }

    let redirected: Vec<_> = front
        .requests()
        .into_iter()
        .filter(|r| r.status == 307)
        .collect();
    assert!(!redirected.is_empty(), "no blob GET was redirected");
    // The registry (front) got bearer tokens on those GETs …
    assert!(redirected.iter().all(|r| r
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer "))));
    // … the blob host got the requests, with no credential of any kind …
    let at_storage = storage.requests();
    assert!(at_storage.len() >= redirected.len(), "{at_storage:?}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    for req in &at_storage {
        assert_eq!(req.header("authorization"), None, "{req:?}");
        let all = format!("{} {:?}", req.target, req.headers);
        assert!(
            !all.contains(password) && !all.contains(&basic[6..]),
            "{all}"
        );
    }
    // … and the token realm, the only other host, got the basic credential.
    let realm = tokens.server.requests();
    assert!(realm.len() > tokens_before, "no token was asked for");
    assert!(realm[tokens_before..]
        .iter()
        .all(|r| r.header("authorization") == Some(basic.as_str())));
    eprintln!(
        "redirect: {} blob GETs redirected to {}, {} requests there without credentials; {} token requests with the basic credential",
        redirected.len(),
        storage.host,
        at_storage.len(),
        realm.len() - tokens_before
    );
}
