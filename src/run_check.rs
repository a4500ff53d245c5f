//! `check`: scan files for image references, verify each distinct image, report per line.
//! Shared by the CLI and the `check` action, which differ only in where the file list comes
//! from and how results are shown.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use sign_action::check::{self, Evaluation, FailOn, ScanReport, Verdict};
use sign_action::oci::registry::{Credential, RegistryClient};
use sign_action::oci::{ArtifactStore, Reference};
use sign_action::policy::store::TrustStore;
use sign_action::policy::TrustPolicyDocument;
use sign_action::verify::VerifySettings;

use crate::cli::{CheckArgs, FailOnArg, OutputFormat};
use crate::run::{
    load_policy, open_trust_store, registry_options, verify_settings, StoreConfig, EXIT_FAILED,
    EXIT_OK,
};

/// Everything a check needs, from CLI arguments or action inputs.
pub struct CheckRequest {
    pub root: PathBuf,
    /// Paths relative to `root`.
    pub files: Vec<String>,
    pub policy: TrustPolicyDocument,
    pub trust_store: TrustStore,
    pub settings: VerifySettings,
    pub store: StoreConfig,
    /// The only registry explicit credentials are sent to.
    pub registry_host: Option<String>,
    pub fail_on: FailOn,
    pub concurrency: usize,
}

/// What a check found.
pub struct CheckOutcome {
    pub scan: ScanReport,
    pub evaluation: Evaluation,
    pub fail_on: FailOn,
    /// Registry requests sent (resolution, signatures, revocation not included).
    pub registry_requests: u64,
}

impl CheckOutcome {
    /// Does this reference's verdict fail the check?
    pub fn fails(&self, verdict: &Verdict) -> bool {
        self.fail_on.fails(verdict)
    }

    /// References whose verdict fails the check.
    pub fn failed_count(&self) -> usize {
        self.evaluation
            .references
            .iter()
            .filter(|r| self.fails(&self.evaluation.image_of(r).verdict))
            .count()
    }

    /// Failing references, plus unreadable files when failing on anything (a file we could
    /// not parse may hide an image).
    pub fn passed(&self) -> bool {
        self.failed_count() == 0 && (self.fail_on != FailOn::Any || self.scan.errors.is_empty())
    }

    /// One JSON object per reference: where, what, and the verdict of its image.
    pub fn reference_rows(&self) -> Vec<Value> {
        self.evaluation
            .references
            .iter()
            .map(|r| {
                let image = self.evaluation.image_of(r);
                let mut row = json!({
                    "file": r.location.file,
                    "line": r.location.line,
                    "column": r.location.column,
                    "reference": r.location.reference,
                    "kind": r.location.kind,
                    "image": image.reference,
                    "failed": self.fails(&image.verdict),
                });
                let verdict = serde_json::to_value(&image.verdict).expect("serialises");
                if let (Value::Object(row), Value::Object(v)) = (&mut row, verdict) {
                    row.extend(v);
                    if let Some(d) = &image.digest {
                        row.insert("digest".into(), json!(d));
                    }
                    if let Some(p) = &image.policy {
                        row.insert("policy".into(), json!(p));
                    }
                    if !image.warnings.is_empty() {
                        row.insert("warnings".into(), json!(image.warnings));
                    }
                }
                row
            })
            .collect()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.passed(),
            "fail-on": self.fail_on,
            "files": self.scan.files,
            "references": self.reference_rows(),
            "skipped": self.scan.skipped,
            "errors": self.scan.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            "distinct-references": self.evaluation.images.len(),
            "resolved": self.evaluation.resolved,
            "verified": self.evaluation.verified,
            "registry-requests": self.registry_requests,
        })
    }
}

impl CheckRequest {
    pub fn from_args(args: &CheckArgs) -> Result<CheckRequest> {
        if args.store.oci_layout {
            anyhow::bail!("--oci-layout does not apply to check: files name registry images");
        }
        let files = check::collect_files(&args.root, &args.patterns)?;
        Ok(CheckRequest {
            root: args.root.clone(),
            files,
            policy: load_policy(args.trust_policy.as_deref())?,
            trust_store: open_trust_store(args.trust_store.as_deref())?,
            settings: verify_settings(args.max_signatures, &[], None)?,
            store: StoreConfig::from_args(&args.store)?,
            registry_host: args.registry_host.clone(),
            fail_on: match args.fail_on {
                FailOnArg::Unsigned => FailOn::Unsigned,
                FailOnArg::Untrusted => FailOn::Untrusted,
                FailOnArg::Any => FailOn::Any,
                FailOnArg::None => FailOn::None,
            },
            concurrency: args.concurrency,
        })
    }
}

/// Scan, then verify. Errors returned here are configuration errors.
pub async fn execute_check(request: CheckRequest) -> Result<CheckOutcome> {
    let scan = check::scan_files(&request.root, &request.files);
    let references: Vec<String> = scan
        .references
        .iter()
        .map(|r| r.reference.clone())
        .collect();
    // Credentials given by the user go to the one registry they name, never to one a scanned
    // file names; the GitHub token only to ghcr.io (as registry_options does).
    let without_credentials = StoreConfig {
        username: None,
        password: None,
        ..request.store.clone()
    };
    let mut options = registry_options(&without_credentials, &references);
    match (
        &request.store.username,
        &request.store.password,
        &request.registry_host,
    ) {
        (Some(username), Some(password), Some(host)) => {
            let host = Reference::parse(&format!("{}/x", host.trim()))
                .map(|r| r.registry)
                .with_context(|| format!("invalid registry host {host:?}"))?;
            options.credentials.insert(
                host,
                Credential::Basic {
                    username: username.clone(),
                    password: password.clone(),
                },
            );
        }
        (Some(_), Some(_), None) => anyhow::bail!(
            "registry credentials need the registry they are for (--registry-host / input `registry-host`): the images come from the scanned files, and credentials are not sent to every registry they name"
        ),
        (Some(_), None, _) | (None, Some(_), _) => {
            anyhow::bail!("give both a registry username and a password, or neither")
        }
        _ => {}
    }
    let client = Arc::new(RegistryClient::new(options).context("cannot set up registry access")?);
    let store: Arc<dyn ArtifactStore> = client.clone();
    let evaluation = check::evaluate(
        store,
        scan.references.clone(),
        &request.policy,
        &request.trust_store,
        &request.settings,
        request.concurrency,
    )
    .await?;
    Ok(CheckOutcome {
        scan,
        evaluation,
        fail_on: request.fail_on,
        registry_requests: client.request_count(),
    })
}

pub async fn run_check(args: CheckArgs) -> Result<i32> {
    let output = args.output;
    let request = CheckRequest::from_args(&args)?;
    let outcome = execute_check(request).await?;
    print_check(&outcome, output);
    Ok(if outcome.passed() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn print_check(outcome: &CheckOutcome, output: OutputFormat) {
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&outcome.to_json()).expect("serialises")
        ),
        OutputFormat::Text => {
            for r in &outcome.evaluation.references {
                let image = outcome.evaluation.image_of(r);
                let l = &r.location;
                println!(
                    "{}:{}:{}: {}{}: {}",
                    l.file,
                    l.line,
                    l.column,
                    if outcome.fails(&image.verdict) {
                        "FAILED "
                    } else {
                        ""
                    },
                    image.verdict.name(),
                    image.verdict.message(&l.reference, image.digest.as_deref())
                );
            }
            for s in &outcome.scan.skipped {
                eprintln!(
                    "{}:{}:{}: skipped {:?}: {}",
                    s.file, s.line, s.column, s.text, s.reason
                );
            }
            for e in &outcome.scan.errors {
                eprintln!("error: {e}");
            }
            println!(
                "{} reference(s) in {} file(s), {} distinct image(s) verified; {} failed (fail-on: {})",
                outcome.evaluation.references.len(),
                outcome.scan.files.len(),
                outcome.evaluation.verified,
                outcome.failed_count(),
                serde_json::to_value(outcome.fail_on)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            );
        }
    }
}
