//! Acceptance tests of `check`: a fixture repository (a multi-document Helm-rendered Kubernetes
//! file, a Compose file, a multi-stage Dockerfile with ARG-substituted FROMs, a workflow file)
//! whose images live in the real `docker-registry` — some signed by a trusted key, one by an
//! untrusted key, some unsigned, one in a repository that does not exist. Driven through the
//! binary: `check --output json`, and `action check` against a local server that answers
//! like GitHub's REST API (pull request files with `Link` pagination, check runs), whose
//! recorded requests are asserted exactly.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sign_action::crypto::KeySpec;
use support::fake_http::{FakeRequest, FakeResponse, FakeServer};
use support::registry_front::{Quirk, RegistryFront};
use support::{make_named_test_key, push_test_image, Registry, RegistryConfig, TestKey};

const PLACEHOLDER: &str = "__REGISTRY__";
const TOKEN: &str = "ghs_testtoken0123456789abcdefSECRET";
const HEAD_SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    cmd.env_remove("SIGN_ACTION_REGISTRY_USERNAME")
        .env_remove("SIGN_ACTION_REGISTRY_PASSWORD")
        .env_remove("GITHUB_TOKEN")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        .env("XDG_CONFIG_HOME", "/nonexistent-xdg-config");
    cmd
}

fn fixture_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check/repo")
}

/// Copy the fixture repository with the registry placeholder replaced on every line (same
/// line numbers; references start where the placeholder starts, so columns hold too).
fn materialise(host: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_substituted(&fixture_repo(), dir.path(), host);
    dir
}

fn copy_substituted(from: &Path, to: &Path, host: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_substituted(&entry.path(), &target, host);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(&target, text.replace(PLACEHOLDER, host)).unwrap();
        }
    }
}

fn sign(reference: &str, key: &TestKey) {
    let out = bin()
        .args(["sign", reference, "--key"])
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.chain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sign failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The registry with the fixture's images, and the trust material.
struct World {
    registry: Registry,
    /// Holds the keys and the policy file for as long as the world lives.
    _keys: tempfile::TempDir,
    store: tempfile::TempDir,
    policy: PathBuf,
    trusted: TestKey,
    stranger: TestKey,
}

impl World {
    async fn new() -> World {
        let registry = Registry::start(RegistryConfig::default());
        let keys = tempfile::tempdir().unwrap();
        let trusted = make_named_test_key(keys.path(), "trusted", KeySpec::EcP256);
        let stranger = make_named_test_key(keys.path(), "stranger", KeySpec::EcP256);
        let store = tempfile::tempdir().unwrap();
        let ca = store.path().join("x509/ca/check");
        std::fs::create_dir_all(&ca).unwrap();
        std::fs::copy(&trusted.cert, ca.join("trusted.pem")).unwrap();
        let policy = keys.path().join("trustpolicy.json");
        std::fs::write(
            &policy,
            json!({"version": "1.0", "trustPolicies": [{
                "name": "check",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:check"],
                "trustedIdentities": ["*"],
            }]})
            .to_string(),
        )
        .unwrap();
        World {
            registry,
            _keys: keys,
            store,
            policy,
            trusted,
            stranger,
        }
    }

    fn host(&self) -> &str {
        &self.registry.host
    }

    /// Push `repo:tag` and sign it with `signer` (None: leave it unsigned).
    async fn image(&self, repo: &str, tag: &str, signer: Option<&TestKey>) -> String {
        let client = self.registry.client();
        let d = push_test_image(&client, self.host(), repo, tag).await;
        if let Some(key) = signer {
            sign(&format!("{}/{repo}@{}", self.host(), d.digest), key);
        }
        d.digest
    }

    /// The fixture's images: trusted, untrusted, unsigned; `check/missing` is never pushed.
    async fn fixture_images(&self) -> BTreeMap<&'static str, String> {
        let mut digests = BTreeMap::new();
        for (name, repo, tag, signer) in [
            ("init", "check/init", "1", Some(&self.trusted)),
            ("app", "check/app", "1.0", Some(&self.trusted)),
            ("base", "check/base", "1.0", Some(&self.trusted)),
            ("builder", "check/builder", "2", Some(&self.trusted)),
            ("db", "check/db", "16", Some(&self.trusted)),
            ("tool", "check/tool", "3", Some(&self.stranger)),
            ("debug", "check/debug", "1", None),
            ("cache", "check/cache", "7", None),
        ] {
            digests.insert(name, self.image(repo, tag, signer).await);
        }
        digests
    }

    fn check_cmd(&self, root: &Path) -> Command {
        let mut cmd = bin();
        cmd.arg("check")
            .arg("--root")
            .arg(root)
            .arg("--trust-policy")
            .arg(&self.policy)
            .arg("--trust-store")
            .arg(self.store.path())
            .args(["--output", "json"]);
        cmd
    }
}

fn run_json(out: Output) -> (i32, Value, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// (file, line, column, reference with the placeholder, kind, result) of every reference the
/// fixture holds, in scan order (files sorted, then source order).
fn expected_references() -> Vec<(
    &'static str,
    u64,
    u64,
    &'static str,
    &'static str,
    &'static str,
)> {
    vec![
        (
            ".github/workflows/deploy.yml",
            8,
            16,
            "__REGISTRY__/check/builder:2",
            "workflow-container",
            "signed-trusted",
        ),
        (
            ".github/workflows/deploy.yml",
            11,
            16,
            "__REGISTRY__/check/db:16",
            "workflow-service",
            "signed-trusted",
        ),
        (
            ".github/workflows/deploy.yml",
            12,
            14,
            "__REGISTRY__/check/cache:7",
            "workflow-service",
            "unsigned",
        ),
        (
            ".github/workflows/deploy.yml",
            15,
            24,
            "__REGISTRY__/check/tool:3",
            "workflow-step",
            "signed-untrusted",
        ),
        (
            ".github/workflows/deploy.yml",
            20,
            14,
            "__REGISTRY__/check/app:1.0",
            "workflow-container",
            "signed-trusted",
        ),
        (
            "Dockerfile",
            7,
            32,
            "__REGISTRY__/check/builder:2",
            "dockerfile-from",
            "signed-trusted",
        ),
        (
            "Dockerfile",
            12,
            6,
            "__REGISTRY__/check/base:1.0",
            "dockerfile-from",
            "signed-trusted",
        ),
        (
            "Dockerfile",
            14,
            13,
            "__REGISTRY__/check/tool:3",
            "dockerfile-copy-from",
            "signed-untrusted",
        ),
        (
            "compose.yaml",
            7,
            12,
            "__REGISTRY__/check/app:1.0",
            "compose-service",
            "signed-trusted",
        ),
        (
            "compose.yaml",
            11,
            13,
            "__REGISTRY__/check/db:16",
            "compose-service",
            "signed-trusted",
        ),
        (
            "compose.yaml",
            4,
            10,
            "__REGISTRY__/check/cache:7",
            "compose-service",
            "unsigned",
        ),
        (
            "k8s/app.yaml",
            14,
            18,
            "__REGISTRY__/check/init:1",
            "kubernetes-init-container",
            "signed-trusted",
        ),
        (
            "k8s/app.yaml",
            17,
            19,
            "__REGISTRY__/check/app:1.0",
            "kubernetes-container",
            "signed-trusted",
        ),
        (
            "k8s/app.yaml",
            21,
            18,
            "__REGISTRY__/check/tool:3",
            "kubernetes-container",
            "signed-untrusted",
        ),
        (
            "k8s/app.yaml",
            36,
            22,
            "__REGISTRY__/check/app:1.0",
            "kubernetes-container",
            "signed-trusted",
        ),
        (
            "k8s/app.yaml",
            46,
            14,
            "__REGISTRY__/check/missing:1",
            "kubernetes-container",
            "could-not-check",
        ),
        (
            "k8s/app.yaml",
            49,
            14,
            "__REGISTRY__/check/debug:1",
            "kubernetes-ephemeral-container",
            "unsigned",
        ),
        (
            "other/unchanged.yaml",
            9,
            14,
            "__REGISTRY__/check/debug:1",
            "kubernetes-container",
            "unsigned",
        ),
    ]
}

/// Lines that name something only a later stage knows: reported as skipped, not checked.
const EXPECTED_SKIPPED: &[(&str, u64)] = &[
    (".github/workflows/deploy.yml", 16),
    ("Dockerfile", 19),
    ("compose.yaml", 17),
];

/// The text at `line`:`column` (1-based, characters) of `file` under `root`.
fn text_at(root: &Path, file: &str, line: u64, column: u64) -> String {
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    let l = text.lines().nth(line as usize - 1).unwrap();
    l.chars().skip(column as usize - 1).collect()
}

fn assert_references(json: &Value, root: &Path, host: &str, only_files: Option<&[&str]>) {
    let got: Vec<(String, u64, u64, String, String, String)> = json["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["line"].as_u64().unwrap(),
                r["column"].as_u64().unwrap(),
                r["reference"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, u64, u64, String, String, String)> = expected_references()
        .into_iter()
        .filter(|e| only_files.is_none_or(|f| f.contains(&e.0)))
        .map(|(f, l, c, r, k, v)| {
            (
                f.to_string(),
                l,
                c,
                r.replace(PLACEHOLDER, host),
                k.to_string(),
                v.to_string(),
            )
        })
        .collect();
    assert_eq!(got, want, "{json:#}");
    // Independently of the table: every position really is where the reference is written
    // (for Dockerfile ARG substitutions, where the substituted text starts).
    for (file, line, column, reference, kind, _) in &got {
        let at = text_at(root, file, *line, *column);
        if kind.starts_with("dockerfile-from") {
            assert!(at.starts_with("${"), "{file}:{line}:{column}: {at}");
        } else {
            assert!(
                at.starts_with(reference.as_str()),
                "{file}:{line}:{column}: {at}"
            );
        }
    }
}

#[tokio::test]
async fn scan_finds_exactly_the_expected_references_and_judges_each() {
    let world = World::new().await;
    let digests = world.fixture_images().await;
    let repo = materialise(world.host());
    let (code, json, stderr) = run_json(world.check_cmd(repo.path()).output().unwrap());
    assert_eq!(code, 1, "fail-on any: {json:#}\n{stderr}");
    assert_eq!(json["passed"], false);
    assert_references(&json, repo.path(), world.host(), None);
    // Not scanned by name: README.md; every recognised file is (other/unchanged.yaml too).
    assert_eq!(
        json["files"],
        json!([
            ".github/workflows/deploy.yml",
            "Dockerfile",
            "compose.yaml",
            "k8s/app.yaml",
            "other/unchanged.yaml"
        ])
    );
    let skipped: Vec<(String, u64)> = json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["file"].as_str().unwrap().into(),
                s["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = EXPECTED_SKIPPED
        .iter()
        .map(|(f, l)| (f.to_string(), *l))
        .collect();
    let mut skipped_sorted = skipped.clone();
    skipped_sorted.sort();
    assert_eq!(skipped_sorted, want);

    let refs = json["references"].as_array().unwrap();
    let by_image = |name: &str| {
        refs.iter()
            .find(|r| {
                r["reference"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("/check/{name}:"))
            })
            .unwrap_or_else(|| panic!("no reference to {name}"))
            .clone()
    };
    // Each result carries what distinguishes it.
    let app = by_image("app");
    assert_eq!(app["digest"], digests["app"].as_str());
    assert!(
        app["signer"].as_str().unwrap().contains("CN=trusted"),
        "{app}"
    );
    let tool = by_image("tool");
    assert_eq!(tool["check"], "authenticity", "{tool}");
    assert!(
        tool["signer"].as_str().unwrap().contains("CN=stranger"),
        "{tool}"
    );
    assert_eq!(tool["failed"], true);
    let debug = by_image("debug");
    assert_eq!(debug["digest"], digests["debug"].as_str());
    assert!(debug.get("signer").is_none());
    let missing = by_image("missing");
    assert_eq!(missing["reason"], "not-found", "{missing}");
    assert!(missing.get("digest").is_none());
    // 18 references to 9 distinct images (other/unchanged.yaml's debug:1 is k8s/app.yaml's),
    // 8 of them resolvable, each verified once.
    assert_eq!(json["distinct-references"], 9);
    assert_eq!(json["resolved"], 9);
    assert_eq!(json["verified"], 8);

    // fail-on decides the exit code.
    for (fail_on, code_want) in [("none", 0), ("unsigned", 1), ("untrusted", 1), ("any", 1)] {
        let (code, json, _) = run_json(
            world
                .check_cmd(repo.path())
                .args(["--fail-on", fail_on])
                .output()
                .unwrap(),
        );
        assert_eq!(code, code_want, "fail-on {fail_on}");
        let failed: Vec<&str> = json["references"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["failed"] == true)
            .map(|r| r["result"].as_str().unwrap())
            .collect();
        let allowed: &[&str] = match fail_on {
            "none" => &[],
            "unsigned" => &["unsigned"],
            "untrusted" => &["unsigned", "signed-untrusted"],
            _ => &["unsigned", "signed-untrusted", "could-not-check"],
        };
        assert!(
            failed.iter().all(|r| allowed.contains(r)),
            "{fail_on}: {failed:?}"
        );
        assert_eq!(
            failed.len(),
            match fail_on {
                "none" => 0,
                "unsigned" => 4,
                "untrusted" => 7,
                _ => 8,
            },
            "{fail_on}"
        );
    }
    // Only the trusted files: passes.
    let (code, json, _) = run_json(
        world
            .check_cmd(repo.path())
            .args(["Dockerfile", "--fail-on", "unsigned"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{json:#}");
    assert_references(&json, repo.path(), world.host(), Some(&["Dockerfile"]));
}

// --- GitHub API fake ------------------------------------------------------------------------

/// A server answering like api.github.com for one repository (`o/r`) and pull request #7:
/// `GET /repos/o/r/pulls/7/files` with `per_page`/`page` and a `Link` header, `POST
/// /repos/o/r/check-runs` and `PATCH /repos/o/r/check-runs/{id}` with the documented bodies.
/// `forbid_checks` answers check-run writes as GitHub does for a read-only (fork) token.
struct FakeGitHub {
    server: FakeServer,
}

impl FakeGitHub {
    async fn start(changed: Vec<(String, &'static str)>, forbid_checks: bool) -> FakeGitHub {
        let host = Arc::new(Mutex::new(String::new()));
        let base = host.clone();
        let server = FakeServer::start(move |req| {
            let base = format!("http://{}", base.lock().unwrap());
            if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
                return github_error(401, "Bad credentials");
            }
            respond(req, &base, &changed, forbid_checks)
        })
        .await;
        *host.lock().unwrap() = server.host.clone();
        FakeGitHub { server }
    }

    fn url(&self) -> String {
        format!("http://{}", self.server.host)
    }
}

fn github_error(status: u16, message: &str) -> FakeResponse {
    FakeResponse::new(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(
            json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest",
                "status": status.to_string(),
            })
            .to_string(),
        )
}

fn query(target: &str) -> BTreeMap<String, String> {
    let q = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn respond(
    req: &FakeRequest,
    base: &str,
    changed: &[(String, &'static str)],
    forbid_checks: bool,
) -> FakeResponse {
    let json_response = |status: u16, body: Value| {
        FakeResponse::new(status)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string())
    };
    match (req.method.as_str(), req.path()) {
        ("GET", "/repos/o/r/pulls/7/files") => {
            let q = query(&req.target);
            let per_page: usize = q
                .get("per_page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30)
                .min(100);
            let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let last = changed.len().div_ceil(per_page).max(1);
            let items: Vec<Value> = changed
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|(name, status)| {
                    json!({
                        "sha": "bbcd538c8e72b8c175046e27cc8f907076331401",
                        "filename": name,
                        "status": status,
                        "additions": 3,
                        "deletions": if *status == "removed" { 9 } else { 0 },
                        "changes": 3,
                        "blob_url": format!("https://github.com/o/r/blob/{HEAD_SHA}/{name}"),
                        "raw_url": format!("https://github.com/o/r/raw/{HEAD_SHA}/{name}"),
                        "contents_url": format!("{base}/repos/o/r/contents/{name}?ref={HEAD_SHA}"),
                        "patch": "@@ -0,0 +1,3 @@",
                    })
                })
                .collect();
            let mut resp = json_response(200, Value::Array(items));
            let link = |p: usize, rel: &str| {
                format!("<{base}/repositories/42/pulls/7/files?per_page={per_page}&page={p}>; rel=\"{rel}\"")
            };
            let mut links = Vec::new();
            if page < last {
                links.push(link(page + 1, "next"));
                links.push(link(last, "last"));
            }
            if page > 1 {
                links.push(link(page - 1, "prev"));
                links.push(link(1, "first"));
            }
            if !links.is_empty() {
                resp = resp.header("Link", &links.join(", "));
            }
            resp
        }
        // GitHub serves the pagination links under /repositories/{id}.
        ("GET", "/repositories/42/pulls/7/files") => {
            let mut forwarded = req.clone();
            forwarded.target = req.target.replacen("/repositories/42/", "/repos/o/r/", 1);
            respond(&forwarded, base, changed, forbid_checks)
        }
        ("POST", "/repos/o/r/check-runs") if forbid_checks => {
            github_error(403, "Resource not accessible by integration")
        }
        ("POST", "/repos/o/r/check-runs") => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            json_response(201, check_run(base, &body, "in_progress"))
        }
        ("PATCH", "/repos/o/r/check-runs/4") => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let status = body["status"].as_str().unwrap_or("in_progress").to_string();
            json_response(200, check_run(base, &body, &status))
        }
        _ => github_error(404, "Not Found"),
    }
}

/// A check run object as the API returns it (the fields its documentation lists).
fn check_run(base: &str, request: &Value, status: &str) -> Value {
    json!({
        "id": 4,
        "head_sha": HEAD_SHA,
        "node_id": "MDg6Q2hlY2tSdW40",
        "external_id": "",
        "url": format!("{base}/repos/o/r/check-runs/4"),
        "html_url": "https://github.com/o/r/runs/4",
        "details_url": "https://example.com",
        "status": status,
        "conclusion": request["conclusion"],
        "started_at": "2026-01-01T00:00:00Z",
        "completed_at": if status == "completed" { json!("2026-01-01T00:01:00Z") } else { Value::Null },
        "output": {
            "title": request["output"]["title"],
            "summary": request["output"]["summary"],
            "text": request["output"]["text"],
            "annotations_count": 0,
            "annotations_url": format!("{base}/repos/o/r/check-runs/4/annotations"),
        },
        "name": request["name"].as_str().unwrap_or("sign-action: image signatures"),
        "check_suite": {"id": 5},
        "app": {"id": 1, "slug": "github-actions", "name": "GitHub Actions"},
        "pull_requests": [],
    })
}

/// Run `action check` as the runner would on a pull_request event for PR #7.
struct ActionRun {
    code: i32,
    stdout: String,
    outputs: BTreeMap<String, String>,
    summary: String,
}

fn run_action(world: &World, workspace: &Path, api: &str, extra: &[(&str, &str)]) -> ActionRun {
    let files = tempfile::tempdir().unwrap();
    let event = files.path().join("event.json");
    std::fs::write(
        &event,
        json!({
            "action": "synchronize",
            "number": 7,
            "pull_request": {
                "number": 7,
                "head": {"sha": HEAD_SHA, "ref": "feature", "repo": {"full_name": "fork/r"}},
                "base": {"sha": "1111111111111111111111111111111111111111", "ref": "main", "repo": {"full_name": "o/r"}},
            },
            "repository": {"full_name": "o/r"},
        })
        .to_string(),
    )
    .unwrap();
    let output = files.path().join("output");
    let summary = files.path().join("summary");
    std::fs::write(&output, "").unwrap();
    std::fs::write(&summary, "").unwrap();
    let mut cmd = bin();
    cmd.args(["action", "check"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_SHA", "2222222222222222222222222222222222222222")
        .env("GITHUB_API_URL", api)
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("INPUT_TRUST-POLICY", &world.policy)
        .env("INPUT_TRUST-STORE", world.store.path())
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_FAIL-ON", "")
        .env("INPUT_FILES", "");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The token appears once, in the command that masks it, and nowhere else.
    assert!(
        stdout.contains(&format!("::add-mask::{TOKEN}\n")),
        "token not masked: {stdout}"
    );
    let unmasked = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| !l.starts_with("::add-mask::"))
        .any(|l| l.contains(TOKEN));
    assert!(!unmasked, "token printed");
    ActionRun {
        code: out.status.code().unwrap_or(-1),
        stdout: format!("{stdout}{stderr}"),
        outputs: parse_github_output(&std::fs::read_to_string(&output).unwrap()),
        summary: std::fs::read_to_string(&summary).unwrap(),
    }
}

fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delim) = line.split_once("<<").expect("heredoc");
        let mut value = Vec::new();
        for l in lines.by_ref() {
            if l == delim {
                break;
            }
            value.push(l);
        }
        out.insert(name.to_string(), value.join("\n"));
    }
    out
}

/// The pull request changes the four deployment files, removes one, and touches 140 other
/// files: 146 entries, two pages of 100.
fn changed_files() -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = vec![
        ("k8s/app.yaml".into(), "modified"),
        ("compose.yaml".into(), "added"),
    ];
    for i in 0..140 {
        files.push((format!("docs/page-{i:03}.md"), "modified"));
    }
    files.push(("deploy/removed.yaml".into(), "removed"));
    files.push(("README.md".into(), "modified"));
    files.push(("Dockerfile".into(), "modified"));
    files.push((".github/workflows/deploy.yml".into(), "renamed"));
    files
}

/// The failing references in the files the pull request changes.
fn failing_annotations() -> Vec<(String, u64, u64, String)> {
    expected_references()
        .into_iter()
        .filter(|e| e.5 != "signed-trusted" && !e.0.starts_with("other/"))
        .map(|(f, l, c, _, _, v)| (f.to_string(), l, c, v.to_string()))
        .collect()
}

// The fake API serves from this runtime while the test thread waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_on_a_pull_request_scans_changed_files_and_publishes_a_check_run() {
    let world = World::new().await;
    world.fixture_images().await;
    let repo = materialise(world.host());
    let github = FakeGitHub::start(changed_files(), false).await;
    let run = run_action(&world, repo.path(), &github.url(), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);

    let requests = github.server.requests();
    let lines: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        lines,
        vec![
            "GET /repos/o/r/pulls/7/files?per_page=100".to_string(),
            "GET /repositories/42/pulls/7/files?per_page=100&page=2".to_string(),
            "POST /repos/o/r/check-runs".to_string(),
            "PATCH /repos/o/r/check-runs/4".to_string(),
            "PATCH /repos/o/r/check-runs/4".to_string(),
        ],
        "{}",
        run.stdout
    );
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let body = |i: usize| -> Value { serde_json::from_slice(&requests[i].body).unwrap() };
    let create = body(2);
    assert_eq!(create["name"], "sign-action: image signatures");
    assert_eq!(
        create["head_sha"], HEAD_SHA,
        "the PR head, not the merge commit"
    );
    assert_eq!(create["status"], "in_progress");
    assert!(create["output"].get("annotations").is_none());

    // One batch: the 7 failing references in the changed files (other/unchanged.yaml is not
    // changed) and the 3 notices.
    let batch = body(3);
    let annotations = batch["output"]["annotations"].as_array().unwrap();
    assert!(annotations.len() <= 50);
    let got: Vec<(String, u64, u64, String)> = annotations
        .iter()
        .filter(|a| a["annotation_level"] == "failure")
        .map(|a| {
            let title = a["title"].as_str().unwrap();
            let result = match title {
                "Unsigned image" => "unsigned",
                "Image signature not trusted" => "signed-untrusted",
                "Image could not be checked" => "could-not-check",
                other => panic!("title {other}"),
            };
            assert_eq!(a["start_line"], a["end_line"]);
            (
                a["path"].as_str().unwrap().to_string(),
                a["start_line"].as_u64().unwrap(),
                a["start_column"].as_u64().unwrap(),
                result.to_string(),
            )
        })
        .collect();
    assert_eq!(got, failing_annotations());
    let notices: Vec<(String, u64)> = annotations
        .iter()
        .filter(|a| a["annotation_level"] == "notice")
        .map(|a| {
            (
                a["path"].as_str().unwrap().into(),
                a["start_line"].as_u64().unwrap(),
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let want: Vec<(String, u64)> = EXPECTED_SKIPPED
        .iter()
        .map(|(f, l)| (f.to_string(), *l))
        .collect();
    assert_eq!(notices, want);
    assert_eq!(annotations.len(), 7 + 3);
    // Messages say which result it is.
    let unsigned = annotations.iter().find(|a| a["start_line"] == 49).unwrap();
    assert!(
        unsigned["message"]
            .as_str()
            .unwrap()
            .contains("is unsigned"),
        "{unsigned}"
    );

    let done = body(4);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["conclusion"], "failure");
    assert!(done["output"].get("annotations").is_none());
    assert!(
        done["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("3 unsigned"),
        "{done}"
    );

    // Workflow commands too, pointing at the same lines.
    for (file, line, col, _) in failing_annotations() {
        let prefix = "::error title=";
        assert!(
            run.stdout.lines().any(|l| l.starts_with(prefix)
                && l.contains(&format!(
                    "file={},line={line},col={col}::",
                    file.replace(':', "%3A")
                ))),
            "no ::error for {file}:{line}:{col} in\n{}",
            run.stdout
        );
    }
    assert!(
        !run.stdout.contains("other/unchanged.yaml"),
        "unchanged file scanned"
    );
    assert!(!run.stdout.contains("::notice::The token may not"));

    assert_eq!(run.outputs["checked"], "17");
    assert_eq!(run.outputs["failed"], "7");
    let results: Value = serde_json::from_str(&run.outputs["results"]).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 17);
    assert!(run
        .summary
        .contains("| Location | Reference | Digest | Result | Signer |"));
    assert_eq!(run.summary.matches("\n| `").count(), 17, "{}", run.summary);
    assert!(run.summary.contains("`k8s/app.yaml:49`"));
}

// The fake API serves from this runtime while the test thread waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_pull_request_falls_back_to_workflow_commands_and_files_input_overrides() {
    let world = World::new().await;
    world.fixture_images().await;
    let repo = materialise(world.host());
    let github = FakeGitHub::start(changed_files(), true).await;
    let run = run_action(&world, repo.path(), &github.url(), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let requests: Vec<String> = github
        .server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert_eq!(
        requests,
        vec![
            "GET /repos/o/r/pulls/7/files",
            "GET /repositories/42/pulls/7/files",
            "POST /repos/o/r/check-runs",
        ]
    );
    assert!(
        run.stdout
            .contains("::notice::The token may not create check runs"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("::error title=").count(),
        7,
        "{}",
        run.stdout
    );
    assert_eq!(run.outputs["failed"], "7");

    // `files` replaces the changed-file list: no API listing, only what it names.
    let github = FakeGitHub::start(changed_files(), false).await;
    let run = run_action(
        &world,
        repo.path(),
        &github.url(),
        &[
            ("INPUT_FILES", "other/**\n"),
            ("INPUT_FAIL-ON", "untrusted"),
            ("INPUT_CHECK-RUN", "false"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(github.server.requests().is_empty());
    assert_eq!(run.outputs["checked"], "1");
    assert!(run
        .stdout
        .contains("::error title=Unsigned image,file=other/unchanged.yaml,line=9,col=14::"));
}

/// 200 references over 20 images: each distinct image is resolved and verified once,
/// counted both by the check itself and at the registry (a recording front before the real
/// registry); and 130 failing references reach the check run in batches of 50, 50 and 30.
// The fake API serves from this runtime while the test thread waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_references_over_twenty_images_are_verified_once_each() {
    let world = World::new().await;
    let front = RegistryFront::start(world.host(), Quirk::None);
    let mut names = Vec::new();
    let mut digests = Vec::new();
    for i in 0..20 {
        let repo = format!("many/img{i:02}");
        let digest = world
            .image(&repo, "1", if i < 7 { Some(&world.trusted) } else { None })
            .await;
        names.push(format!("{}/{repo}:1", front.host));
        digests.push(digest);
    }
    let manifest = |copies: usize| {
        let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
        for c in 0..copies {
            text.push_str(&format!(
                "  - apiVersion: v1\n    kind: Pod\n    metadata:\n      name: p{c}\n    spec:\n      containers:\n"
            ));
            for (i, name) in names.iter().enumerate() {
                text.push_str(&format!("        - name: c{i}\n          image: {name}\n"));
            }
        }
        text
    };
    let many = tempfile::tempdir().unwrap();
    std::fs::write(many.path().join("many.yaml"), manifest(10)).unwrap();
    let once = tempfile::tempdir().unwrap();
    std::fs::write(once.path().join("once.yaml"), manifest(1)).unwrap();

    let (code, json, _) = run_json(world.check_cmd(many.path()).output().unwrap());
    assert_eq!(code, 1);
    assert_eq!(json["references"].as_array().unwrap().len(), 200);
    assert_eq!(json["distinct-references"], 20);
    assert_eq!(json["resolved"], 20);
    assert_eq!(json["verified"], 20);
    // At the registry: per image, one resolution of its tag, one listing of its signatures
    // and, when signed, one fetch of the signature manifest and of its envelope.
    let seen = front.requests();
    if std::env::var_os("CHECK_DEBUG").is_some() {
        for r in &seen {
            eprintln!("{} {} {}", r.method, r.target, r.status);
        }
    }
    for (i, digest) in digests.iter().enumerate() {
        let repo = format!("/v2/many/img{i:02}/");
        let count = |f: &dyn Fn(&str) -> bool| {
            seen.iter()
                .filter(|r| r.target.starts_with(&repo) && f(&r.target[repo.len()..]))
                .count()
        };
        assert_eq!(count(&|p| p == "manifests/1"), 1, "img{i:02} resolved once");
        let tag_schema = format!("manifests/{}", digest.replace(':', "-"));
        let listings = count(&|p| p.starts_with("referrers/") || p == tag_schema);
        assert!(
            (1..=2).contains(&listings),
            "img{i:02} listed {listings} times"
        );
        assert_eq!(
            count(&|p| p == format!("manifests/{digest}")),
            0,
            "resolved from memory"
        );
        let signature_manifests = count(&|p| p.starts_with("manifests/sha256:"));
        assert_eq!(signature_manifests, if i < 7 { 1 } else { 0 }, "img{i:02}");
        let blobs = count(&|p| p.starts_with("blobs/"));
        assert_eq!(
            blobs,
            if i < 7 { 1 } else { 0 },
            "img{i:02} envelope fetched once"
        );
    }
    let (_, json_once, _) = run_json(world.check_cmd(once.path()).output().unwrap());
    assert_eq!(json_once["references"].as_array().unwrap().len(), 20);
    assert_eq!(json_once["verified"], 20);
    // Same verdicts for every copy of an image.
    let results: Vec<&str> = json["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "signed-trusted").count(),
        70
    );
    assert_eq!(results.iter().filter(|r| **r == "unsigned").count(), 130);

    // The action: 130 failure annotations, 50 per request at most.
    let github = FakeGitHub::start(vec![("many.yaml".into(), "added")], false).await;
    let run = run_action(&world, many.path(), &github.url(), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let requests = github.server.requests();
    let patches: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let sizes: Vec<usize> = patches
        .iter()
        .map(|p| p["output"]["annotations"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![50, 50, 30, 0]);
    let lines: Vec<u64> = patches
        .iter()
        .flat_map(|p| {
            p["output"]["annotations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|a| {
            assert_eq!(a["path"], "many.yaml");
            assert_eq!(a["annotation_level"], "failure");
            a["start_line"].as_u64().unwrap()
        })
        .collect();
    // Line of image i in copy c: 4 header lines, then 5 per pod and 2 per container.
    let want: Vec<u64> = (0..10u64)
        .flat_map(|c| (7..20u64).map(move |i| 3 + c * (6 + 40) + 6 + 2 * i + 2))
        .collect();
    assert_eq!(lines, want);
    assert_eq!(patches[3]["conclusion"], "failure");
    assert_eq!(run.outputs["failed"], "130");
}

/// Registry credentials go to the registry they are given for, never to one that a scanned
/// file names: the references are pull-request content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_only_to_the_named_registry() {
    let registry = Registry::start(RegistryConfig {
        htpasswd: Some(("ci".into(), "s3cret-registry-pass".into())),
        ..Default::default()
    });
    let image = push_test_image(&registry.client(), &registry.host, "private/app", "1").await;
    // A registry the file names that asks for basic credentials, and records what it gets.
    let lure = FakeServer::start(|_| {
        FakeResponse::new(401)
            .header("WWW-Authenticate", "Basic realm=\"lure\"")
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
    })
    .await;
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("compose.yaml"),
        format!(
            "services:\n  app:\n    image: {}/private/app:1\n  lure:\n    image: {}/steal/me:1\n",
            registry.host, lure.host
        ),
    )
    .unwrap();
    let policy = repo.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"version":"1.0","trustPolicies":[{"name":"skip","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}"#,
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let check = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.arg("check")
            .arg("--root")
            .arg(repo.path())
            .arg("compose.yaml")
            .arg("--trust-policy")
            .arg(&policy)
            .arg("--trust-store")
            .arg(store.path())
            .args(["-u", "ci", "-p", "s3cret-registry-pass", "--output", "json"])
            .args(extra);
        cmd.output().unwrap()
    };
    // Without saying which registry they are for, credentials are refused outright.
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--registry-host"));
    assert!(lure.requests().is_empty());

    let out = check(&["--registry-host", &registry.host]);
    let (code, json, stderr) = run_json(out);
    assert_eq!(code, 1, "{json:#}\n{stderr}");
    let refs = json["references"].as_array().unwrap();
    assert_eq!(refs[0]["result"], "signed-trusted", "{json:#}");
    assert_eq!(refs[0]["digest"], image.digest.as_str());
    assert_eq!(refs[1]["result"], "could-not-check");
    assert_eq!(refs[1]["reason"], "unauthorized", "{json:#}");
    let seen = lure.requests();
    assert!(!seen.is_empty(), "the lure was asked");
    for r in &seen {
        assert_eq!(
            r.header("authorization"),
            None,
            "credentials sent to {}",
            r.target
        );
    }
}

/// The token goes only to the API origin: a pagination link to another host is refused
/// before anything is sent there.
#[tokio::test]
async fn pagination_links_to_another_origin_are_refused() {
    use sign_action::check::github::{GitHubClient, GitHubError};
    let elsewhere = FakeServer::start(|_| FakeResponse::new(200).body("[]")).await;
    let next = format!(
        "<http://{}/repos/o/r/pulls/7/files?page=2>; rel=\"next\"",
        elsewhere.host
    );
    let api = FakeServer::start(move |_| {
        FakeResponse::new(200)
            .header("Content-Type", "application/json")
            .header("Link", &next)
            .body("[]")
    })
    .await;
    let client = GitHubClient::new(&format!("http://{}", api.host), TOKEN, "o/r").unwrap();
    match client.pull_request_files(7).await {
        Err(GitHubError::ForeignLink(host)) => assert_eq!(host, elsewhere.host),
        other => panic!("expected ForeignLink, got {other:?}"),
    }
    assert_eq!(api.requests().len(), 1);
    assert!(elsewhere.requests().is_empty());
}
