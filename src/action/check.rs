//! The `check` action (`check/action.yml`): which files (the pull request's changed files by
//! default), the scan and verification shared with the CLI, then annotations as workflow
//! commands, a Check Run when the token may write one, outputs and the step summary.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use sign_action::check::github::{
    Annotation, CheckRunReport, Conclusion, GitHubClient, Level, Published,
};
use sign_action::check::scan::file_kind;
use sign_action::check::{collect_files, FailOn, Verdict};
use sign_action::policy::TrustPolicyDocument;

use super::run::{env_value, store_from_inputs, trust_inputs};
use super::spec::{DeclaredInputs, CHECK_INPUTS};
use super::summary::{render_table, text, Cell};
use super::{Action, AnnotationProps, Commands, Mode, Outputs};
use crate::run::{
    load_policy, one_line, open_trust_store, verify_settings, StoreConfig, EXIT_FAILED, EXIT_OK,
    EXIT_USAGE,
};
use crate::run_check::{execute_check, CheckOutcome, CheckRequest};

/// Name of the check run on the pull request.
pub const CHECK_RUN_NAME: &str = "sign-action: image signatures";

/// Largest event payload read (GitHub caps webhook payloads at 25 MB).
const MAX_EVENT_BYTES: u64 = 25 * 1024 * 1024;

/// Rows shown in the step summary; the `results` output has them all.
const MAX_SUMMARY_ROWS: usize = 2000;

/// Inputs of the check action whose values are secrets.
const SECRET_INPUTS: &[&str] = &["registry-password", "github-token"];

/// The action's settings, from its inputs.
pub(super) struct CheckSettings {
    pub patterns: Vec<String>,
    pub fail_on: FailOn,
    pub policy: TrustPolicyDocument,
    pub trust_store: sign_action::policy::store::TrustStore,
    pub max_signatures: usize,
    pub check_run: bool,
    pub store: StoreConfig,
    pub registry_host: Option<String>,
    pub github_token: Option<String>,
}

pub(super) fn check_settings_from_inputs(
    inputs: &DeclaredInputs,
    env: &[(String, String)],
) -> Result<CheckSettings> {
    let fail_on_text = inputs.require("fail-on")?;
    let fail_on = FailOn::parse(fail_on_text).with_context(|| {
        format!("input `fail-on` must be unsigned, untrusted, any or none, not {fail_on_text:?}")
    })?;
    let (policy, trust_store, max_signatures) = trust_inputs(inputs)?;
    let store = store_from_inputs(inputs, env, false)?;
    let github_token = store.github_token.clone();
    Ok(CheckSettings {
        patterns: inputs.get_multiline("files"),
        fail_on,
        policy,
        trust_store,
        max_signatures,
        check_run: inputs.get_bool("check-run")?.unwrap_or(true),
        store,
        registry_host: inputs.get("registry-host").map(String::from),
        github_token,
    })
}

/// What the workflow run says about where we are.
#[derive(Debug, Default)]
struct RunContext {
    event_name: Option<String>,
    repository: Option<String>,
    api_url: String,
    pull_request: Option<u64>,
    head_sha: Option<String>,
}

impl RunContext {
    fn from_env(env: &[(String, String)]) -> Result<RunContext> {
        let mut ctx = RunContext {
            event_name: env_value(env, "GITHUB_EVENT_NAME").map(String::from),
            repository: env_value(env, "GITHUB_REPOSITORY").map(String::from),
            api_url: env_value(env, "GITHUB_API_URL")
                .unwrap_or("https://api.github.com")
                .to_string(),
            pull_request: None,
            head_sha: env_value(env, "GITHUB_SHA").map(String::from),
        };
        let is_pr = matches!(
            ctx.event_name.as_deref(),
            Some("pull_request" | "pull_request_target")
        );
        if let (true, Some(path)) = (is_pr, env_value(env, "GITHUB_EVENT_PATH")) {
            use std::io::Read;
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_EVENT_BYTES).read_to_end(&mut bytes))
                .with_context(|| format!("cannot read the event payload {path}"))?;
            let event: serde_json::Value =
                serde_json::from_slice(&bytes).context("the event payload is not JSON")?;
            let pr = &event["pull_request"];
            ctx.pull_request = pr["number"].as_u64();
            // Annotate the pull request's head commit, not the merge commit GITHUB_SHA names.
            if let Some(sha) = pr["head"]["sha"].as_str() {
                ctx.head_sha = Some(sha.to_string());
            }
            if ctx.repository.is_none() {
                ctx.repository = event["repository"]["full_name"].as_str().map(String::from);
            }
        }
        Ok(ctx)
    }
}

/// Run the check action with the process environment.
pub async fn check_action() -> i32 {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let commands = Commands::standard(Mode::Action);
    let outputs = Outputs::from_env(env.iter().cloned());
    let mut action = Action::new(commands, outputs);
    check_action_with(&env, &mut action).await
}

fn fail<W: Write>(action: &mut Action<W>, e: &anyhow::Error) -> i32 {
    let message = action.commands.redact(&one_line(e));
    let _ = action.commands.error(&message, &AnnotationProps::default());
    EXIT_USAGE
}

pub async fn check_action_with<W: Write>(env: &[(String, String)], action: &mut Action<W>) -> i32 {
    let inputs = DeclaredInputs::from_env(env.iter().cloned(), CHECK_INPUTS);
    // Masks first, so nothing printed later can show a secret.
    for name in SECRET_INPUTS {
        if let Some(value) = inputs.get(name) {
            let _ = action.commands.register_secret(value);
        }
    }
    if let Some(t) = env_value(env, "GITHUB_TOKEN") {
        let _ = action.commands.register_secret(t);
    }
    let settings = match check_settings_from_inputs(&inputs, env) {
        Ok(s) => s,
        Err(e) => return fail(action, &e),
    };
    let ctx = match RunContext::from_env(env) {
        Ok(c) => c,
        Err(e) => return fail(action, &e),
    };
    let root = PathBuf::from(env_value(env, "GITHUB_WORKSPACE").unwrap_or("."));
    let github = match (&settings.github_token, &ctx.repository) {
        (Some(token), Some(repo)) => match GitHubClient::new(&ctx.api_url, token, repo) {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = action.commands.warning(
                    &format!("cannot use the GitHub API: {e}"),
                    &AnnotationProps::default(),
                );
                None
            }
        },
        _ => None,
    };

    let files = match select_files(&settings, &ctx, github.as_ref(), &root, action).await {
        Ok(f) => f,
        Err(e) => return fail(action, &e),
    };
    let request = CheckRequest {
        root: root.clone(),
        files,
        settings: match verify_settings(settings.max_signatures, &[], None) {
            Ok(s) => s,
            Err(e) => return fail(action, &e),
        },
        policy: settings.policy,
        trust_store: settings.trust_store,
        store: settings.store,
        registry_host: settings.registry_host,
        fail_on: settings.fail_on,
        concurrency: 8,
    };
    let _ = action.commands.group(&format!(
        "Checking the images referenced by {} file{}",
        request.files.len(),
        if request.files.len() == 1 { "" } else { "s" }
    ));
    let outcome = match execute_check(request).await {
        Ok(o) => o,
        Err(e) => {
            let _ = action.commands.end_group();
            return fail(action, &e);
        }
    };
    for r in &outcome.evaluation.references {
        let image = outcome.evaluation.image_of(r);
        let _ = action.commands.info(&format!(
            "{}:{}:{}: {}: {}",
            r.location.file,
            r.location.line,
            r.location.column,
            image.verdict.name(),
            image
                .verdict
                .message(&r.location.reference, image.digest.as_deref())
        ));
    }
    let _ = action.commands.end_group();

    let annotations = annotations(&outcome);
    for a in &annotations {
        let props = AnnotationProps {
            title: Some(a.title.clone()),
            file: Some(a.path.clone()),
            line: Some(a.line.into()),
            col: Some(a.column.into()),
            ..AnnotationProps::default()
        };
        let message = action.commands.redact(&a.message);
        let _ = match a.level {
            Level::Failure => action.commands.error(&message, &props),
            Level::Warning => action.commands.warning(&message, &props),
            Level::Notice => action.commands.notice(&message, &props),
        };
    }
    for e in &outcome.scan.errors {
        let message = action.commands.redact(&e.to_string());
        let props = AnnotationProps::default();
        let _ = if outcome.fail_on == FailOn::Any {
            action.commands.error(&message, &props)
        } else {
            action.commands.warning(&message, &props)
        };
    }

    let summary = render_check_summary(&outcome);
    if settings.check_run {
        publish(
            action,
            &settings.github_token,
            &ctx,
            github.as_ref(),
            &outcome,
            &annotations,
            &summary,
        )
        .await;
    }

    let mut code = if outcome.passed() {
        EXIT_OK
    } else {
        EXIT_FAILED
    };
    let results = serde_json::to_string(&outcome.reference_rows()).expect("serialises");
    let results = action.commands.redact(&results);
    let written = [
        action.set_output("checked", &outcome.evaluation.references.len().to_string()),
        action.set_output("failed", &outcome.failed_count().to_string()),
        action.set_output("results", &results),
    ];
    for e in written.into_iter().filter_map(Result::err) {
        let _ = action.commands.error(
            &format!("cannot write outputs: {e}"),
            &AnnotationProps::default(),
        );
        code = EXIT_FAILED;
    }
    let summary = action.commands.redact(&summary);
    if let Err(e) = action.append_summary(&summary) {
        let _ = action.commands.warning(
            &format!("cannot write the step summary: {e}"),
            &AnnotationProps::default(),
        );
    }
    code
}

/// The files to scan: the `files` input; else a pull request's changed files; else the whole
/// workspace. When the changed files cannot be listed, everything is scanned (a superset,
/// never fewer images) with a warning.
async fn select_files<W: Write>(
    settings: &CheckSettings,
    ctx: &RunContext,
    github: Option<&GitHubClient>,
    root: &Path,
    action: &mut Action<W>,
) -> Result<Vec<String>> {
    if !settings.patterns.is_empty() {
        return Ok(collect_files(root, &settings.patterns)?);
    }
    let Some(number) = ctx.pull_request else {
        return Ok(collect_files(root, &[])?);
    };
    let listed = match github {
        Some(client) => client
            .pull_request_files(number)
            .await
            .map_err(|e| e.to_string()),
        None => Err("no GitHub token or repository to list them with".to_string()),
    };
    match listed {
        Ok(changed) => {
            let mut files: Vec<String> = changed
                .into_iter()
                .filter(|f| f.exists && file_kind(&f.path).is_some())
                .map(|f| f.path)
                .filter(|p| is_inside(p) && root.join(p).is_file())
                .collect();
            files.sort();
            files.dedup();
            let _ = action.commands.info(&format!(
                "pull request #{number}: {} changed file{} to scan",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            ));
            Ok(files)
        }
        Err(e) => {
            let _ = action.commands.warning(
                &format!(
                    "cannot list the files pull request #{number} changes ({e}); scanning the whole workspace instead"
                ),
                &AnnotationProps::default(),
            );
            Ok(collect_files(root, &[])?)
        }
    }
}

/// A path the API listed that stays inside the workspace.
fn is_inside(path: &str) -> bool {
    !path.starts_with('/') && !path.split('/').any(|c| c == "..")
}

/// One annotation per reference that is not signed and trusted (a failure when it fails the
/// check, a warning otherwise), and a notice per reference that cannot be checked before
/// deployment.
pub fn annotations(outcome: &CheckOutcome) -> Vec<Annotation> {
    let mut out = Vec::new();
    for r in &outcome.evaluation.references {
        let image = outcome.evaluation.image_of(r);
        if matches!(image.verdict, Verdict::SignedTrusted { .. }) {
            continue;
        }
        out.push(Annotation {
            path: r.location.file.clone(),
            line: r.location.line as u32,
            column: r.location.column as u32,
            level: if outcome.fails(&image.verdict) {
                Level::Failure
            } else {
                Level::Warning
            },
            title: image.verdict.title().to_string(),
            message: image
                .verdict
                .message(&r.location.reference, image.digest.as_deref()),
        });
    }
    for s in &outcome.scan.skipped {
        out.push(Annotation {
            path: s.file.clone(),
            line: s.line as u32,
            column: s.column as u32,
            level: Level::Notice,
            title: "Image reference not checked".into(),
            message: format!(
                "{:?} cannot be checked before deployment: {}",
                s.text, s.reason
            ),
        });
    }
    out
}

async fn publish<W: Write>(
    action: &mut Action<W>,
    token: &Option<String>,
    ctx: &RunContext,
    github: Option<&GitHubClient>,
    outcome: &CheckOutcome,
    annotations: &[Annotation],
    summary: &str,
) {
    let (Some(client), Some(head_sha), Some(_)) = (github, &ctx.head_sha, token) else {
        let _ = action.commands.debug(
            "no GitHub token, repository or commit: no check run; the annotations are workflow commands only",
        );
        return;
    };
    let failed = outcome.failed_count();
    let report = CheckRunReport {
        name: CHECK_RUN_NAME.to_string(),
        head_sha: head_sha.clone(),
        conclusion: if !outcome.passed() {
            Conclusion::Failure
        } else if annotations.iter().any(|a| a.level != Level::Notice) {
            Conclusion::Neutral
        } else {
            Conclusion::Success
        },
        title: if failed == 0 {
            format!(
                "{} image reference{} checked",
                outcome.evaluation.references.len(),
                if outcome.evaluation.references.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )
        } else {
            format!(
                "{failed} of {} image references fail",
                outcome.evaluation.references.len()
            )
        },
        summary: action.commands.redact(&summary_counts(outcome)),
        text: Some(action.commands.redact(summary)),
        annotations: annotations
            .iter()
            .map(|a| Annotation {
                message: action.commands.redact(&a.message),
                ..a.clone()
            })
            .collect(),
    };
    match client.publish_check_run(&report).await {
        Ok(Published {
            html_url, requests, ..
        }) => {
            let _ = action.commands.info(&format!(
                "published check run {CHECK_RUN_NAME:?} with {} annotation{} in {requests} requests{}",
                annotations.len(),
                if annotations.len() == 1 { "" } else { "s" },
                html_url.map(|u| format!(": {u}")).unwrap_or_default()
            ));
        }
        Err(e) if e.is_forbidden() => {
            let _ = action.commands.notice(
                &format!(
                    "The token may not create check runs ({e}). This is expected on pull requests from forks; elsewhere grant `permissions: checks: write`. The annotations above were written as workflow commands instead (the runner shows at most 10 errors and 10 warnings per step)."
                ),
                &AnnotationProps::default(),
            );
        }
        Err(e) => {
            let _ = action.commands.warning(
                &format!("could not publish the check run: {e}; the annotations above are workflow commands only"),
                &AnnotationProps::default(),
            );
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `N references to M images in F files: …` with a count per result.
fn summary_counts(outcome: &CheckOutcome) -> String {
    let mut counts = [0usize; 4];
    for r in &outcome.evaluation.references {
        let i = match outcome.evaluation.image_of(r).verdict {
            Verdict::SignedTrusted { .. } => 0,
            Verdict::SignedUntrusted { .. } => 1,
            Verdict::Unsigned => 2,
            Verdict::CouldNotCheck { .. } => 3,
        };
        counts[i] += 1;
    }
    format!(
        "{} to {} in {}: {} signed and trusted, {} signed but not trusted, {} unsigned, {} could not be checked. {} (fail-on: {}).",
        plural(outcome.evaluation.references.len(), "image reference", "image references"),
        plural(outcome.evaluation.images.len(), "distinct image", "distinct images"),
        plural(outcome.scan.files.len(), "file", "files"),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        if outcome.passed() { "Passed" } else { "Failed" },
        match outcome.fail_on {
            FailOn::Unsigned => "unsigned",
            FailOn::Untrusted => "untrusted",
            FailOn::Any => "any",
            FailOn::None => "none",
        }
    )
}

/// The step summary: counts, then one table row per reference (file:line, reference, digest,
/// result, signer), then what was skipped and what could not be read.
pub fn render_check_summary(outcome: &CheckOutcome) -> String {
    let mut out = String::from("### Image signatures\n\n");
    out.push_str(&text(&summary_counts(outcome)));
    out.push_str("\n\n");
    let refs = &outcome.evaluation.references;
    if !refs.is_empty() {
        let rows: Vec<Vec<Cell>> = refs
            .iter()
            .take(MAX_SUMMARY_ROWS)
            .map(|r| {
                let image = outcome.evaluation.image_of(r);
                let (result, signer) = match &image.verdict {
                    Verdict::SignedTrusted { signer } => (
                        "signed and trusted".to_string(),
                        signer.clone().unwrap_or_else(|| "(policy skips)".into()),
                    ),
                    Verdict::SignedUntrusted { check, signer, .. } => (
                        format!("signed, not trusted ({check} failed)"),
                        signer.clone().unwrap_or_default(),
                    ),
                    Verdict::Unsigned => ("unsigned".to_string(), String::new()),
                    Verdict::CouldNotCheck { detail, .. } => {
                        (format!("could not check: {detail}"), String::new())
                    }
                };
                let mark = if outcome.fails(&image.verdict) {
                    "❌ "
                } else if matches!(image.verdict, Verdict::SignedTrusted { .. }) {
                    "✅ "
                } else {
                    "⚠️ "
                };
                vec![
                    Cell::Code(format!("{}:{}", r.location.file, r.location.line)),
                    Cell::Code(r.location.reference.clone()),
                    Cell::Code(image.digest.clone().unwrap_or_default()),
                    Cell::Text(format!("{mark}{result}")),
                    Cell::Text(signer),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &["Location", "Reference", "Digest", "Result", "Signer"],
            &rows,
        ));
        if refs.len() > MAX_SUMMARY_ROWS {
            out.push_str(&format!(
                "\n{} more references are in the `results` output.\n",
                refs.len() - MAX_SUMMARY_ROWS
            ));
        }
    }
    if !outcome.scan.skipped.is_empty() {
        out.push_str("\n**Not checkable before deployment**\n\n");
        for s in &outcome.scan.skipped {
            out.push_str(&format!(
                "- {}:{}: {} — {}\n",
                text(&s.file),
                s.line,
                super::summary::code(&s.text),
                text(&s.reason)
            ));
        }
    }
    if !outcome.scan.errors.is_empty() {
        out.push_str("\n**Files that could not be scanned**\n\n");
        for e in &outcome.scan.errors {
            out.push_str(&format!("- {}\n", text(&e.to_string())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sign_action::check::evaluate::Unchecked;
    use sign_action::check::{
        Evaluation, ImageRef, ImageResult, RefKind, RefResult, ScanReport, Skipped,
    };

    fn outcome(fail_on: FailOn) -> CheckOutcome {
        let verdicts = [
            Verdict::SignedTrusted {
                signer: Some("CN=a".into()),
            },
            Verdict::SignedUntrusted {
                check: "authenticity".into(),
                signer: Some("CN=b".into()),
                detail: "not trusted".into(),
            },
            Verdict::Unsigned,
            Verdict::CouldNotCheck {
                reason: Unchecked::Unreachable,
                detail: "refused".into(),
            },
        ];
        let images: Vec<ImageResult> = verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| ImageResult {
                reference: format!("r.example/img{i}:1"),
                digest: Some(format!("sha256:{i:064}")),
                verdict: v.clone(),
                policy: None,
                warnings: Vec::new(),
            })
            .collect();
        let references = (0..4)
            .map(|i| RefResult {
                location: ImageRef {
                    file: "k8s/a|b.yaml".into(),
                    line: 10 + i,
                    column: 3,
                    reference: format!("r.example/img{i}:1"),
                    kind: RefKind::KubernetesContainer,
                },
                image: i,
            })
            .collect();
        CheckOutcome {
            scan: ScanReport {
                files: vec!["k8s/a|b.yaml".into()],
                references: Vec::new(),
                skipped: vec![Skipped {
                    file: "Dockerfile".into(),
                    line: 2,
                    column: 6,
                    text: "${BASE}".into(),
                    reason: "no default".into(),
                }],
                errors: Vec::new(),
            },
            evaluation: Evaluation {
                images,
                references,
                resolved: 4,
                verified: 4,
            },
            fail_on,
            registry_requests: 0,
        }
    }

    #[test]
    fn annotation_levels_follow_fail_on() {
        let levels = |f: FailOn| {
            annotations(&outcome(f))
                .iter()
                .map(|a| (a.line, a.level))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            levels(FailOn::Untrusted),
            vec![
                (11, Level::Failure),
                (12, Level::Failure),
                (13, Level::Warning),
                (2, Level::Notice)
            ]
        );
        assert_eq!(
            levels(FailOn::None),
            vec![
                (11, Level::Warning),
                (12, Level::Warning),
                (13, Level::Warning),
                (2, Level::Notice)
            ]
        );
        let o = outcome(FailOn::Unsigned);
        assert_eq!(o.failed_count(), 1);
        assert!(!o.passed());
        assert!(outcome(FailOn::None).passed());
    }

    #[test]
    fn summary_has_one_escaped_row_per_reference() {
        let s = render_check_summary(&outcome(FailOn::Any));
        assert_eq!(s.matches("\n| `k8s/a\\|b.yaml:").count(), 4, "{s}");
        assert!(s.contains("1 signed and trusted, 1 signed but not trusted, 1 unsigned, 1 could not be checked. Failed (fail-on: any)."));
        assert!(s.contains("signed, not trusted (authenticity failed)"));
        assert!(s.contains("`${BASE}`"));
    }

    #[test]
    fn pull_request_context_names_the_head_commit() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"pull_request":{"number":12,"head":{"sha":"abc"}},"repository":{"full_name":"o/r"}}"#,
        )
        .unwrap();
        let env = |name: &str| {
            vec![
                ("GITHUB_EVENT_NAME".to_string(), name.to_string()),
                ("GITHUB_EVENT_PATH".into(), event.display().to_string()),
                ("GITHUB_SHA".into(), "merge".into()),
            ]
        };
        let ctx = RunContext::from_env(&env("pull_request")).unwrap();
        assert_eq!(ctx.pull_request, Some(12));
        assert_eq!(ctx.head_sha.as_deref(), Some("abc"));
        assert_eq!(ctx.repository.as_deref(), Some("o/r"));
        assert_eq!(ctx.api_url, "https://api.github.com");
        let ctx = RunContext::from_env(&env("push")).unwrap();
        assert_eq!(ctx.pull_request, None);
        assert_eq!(ctx.head_sha.as_deref(), Some("merge"));
        assert!(is_inside("a/b.yaml"));
        assert!(!is_inside("../b.yaml") && !is_inside("/etc/x.yaml"));
    }
}
