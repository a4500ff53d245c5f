//! Turns parsed arguments into library calls and results into output and exit codes.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use sign_action::crypto::{LocalSigner, Signer};
use sign_action::envelope::EnvelopeFormat;
use sign_action::oci::registry::{Credential, RegistryOptions};
use sign_action::oci::{ArtifactStore, ManifestForm, Reference};
use sign_action::sign::{self, SignReport, SignSettings, SignTarget};

use crate::cli::{
    ActionKind, CertCommand, Cli, Command, ManifestFormArg, OutputFormat, SignArgs,
    SignatureFormatArg, StoreArgs,
};

/// Exit codes, as documented in the README.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

pub async fn run(cli: Cli) -> i32 {
    let outcome = match cli.command {
        Command::Sign(args) => run_sign(args).await,
        Command::Cert(CertCommand::GenerateTest { name, dir }) => generate_test(&name, &dir),
        Command::Action {
            kind: ActionKind::Sign,
        } => Ok(crate::action::run::sign_action().await),
        Command::Verify(_) | Command::List(_) | Command::Inspect(_) | Command::Action { .. } => {
            Err(anyhow::anyhow!("not available in this build"))
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            EXIT_USAGE
        }
    }
}

/// Render an error chain on one line: `outer: inner: root`.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn generate_test(name: &str, dir: &Path) -> Result<i32> {
    let generated = sign_action::testcert::generate_test_certificate(name, dir)
        .with_context(|| format!("cannot create the test certificate {name:?}"))?;
    eprintln!(
        "created test key {} and certificate {} ({})\ntrust store: {}\ntrust policy: {}",
        generated.key_path.display(),
        generated.cert_path.display(),
        generated.subject,
        generated.trust_store_root.display(),
        generated.trust_policy_path.display()
    );
    Ok(EXIT_OK)
}

/// Where artifacts live and how to reach them, resolved from CLI arguments or action inputs.
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    pub oci_layout: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Used as the password for ghcr.io only, when no explicit credentials are given.
    pub github_token: Option<String>,
    pub insecure_registries: Vec<String>,
    pub registry_ca_pem: Vec<Vec<u8>>,
}

impl StoreConfig {
    pub fn from_args(args: &StoreArgs) -> Result<StoreConfig> {
        let registry_ca_pem = args
            .registry_ca
            .iter()
            .map(|p| {
                std::fs::read(p)
                    .with_context(|| format!("cannot read the registry CA file {}", p.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StoreConfig {
            oci_layout: args.oci_layout,
            username: args.username.clone(),
            password: args.password.clone(),
            github_token: None,
            insecure_registries: args.insecure_registries.clone(),
            registry_ca_pem,
        })
    }
}

/// Everything a signing run needs, built from CLI arguments or action inputs.
pub struct SignRequest {
    pub references: Vec<String>,
    pub key_pem: Vec<u8>,
    pub key_password: Option<String>,
    pub chain_pem: Vec<u8>,
    pub settings: SignSettings,
    pub store: StoreConfig,
}

impl SignRequest {
    pub fn from_args(args: &SignArgs) -> Result<SignRequest> {
        let key_pem = std::fs::read(&args.key)
            .with_context(|| format!("cannot read the key file {}", args.key.display()))?;
        let chain_pem = std::fs::read(&args.cert)
            .with_context(|| format!("cannot read the certificate file {}", args.cert.display()))?;
        let settings = settings_from(
            args.signature_format,
            args.expiry.as_deref(),
            &args.user_metadata,
            args.manifest_form,
            args.concurrency,
        )?;
        Ok(SignRequest {
            references: args.references.clone(),
            key_pem,
            key_password: args.key_password.clone(),
            chain_pem,
            settings,
            store: StoreConfig::from_args(&args.store)?,
        })
    }
}

pub fn settings_from(
    format: SignatureFormatArg,
    expiry: Option<&str>,
    user_metadata: &[String],
    manifest_form: ManifestFormArg,
    concurrency: usize,
) -> Result<SignSettings> {
    let expiry = expiry
        .map(sign::parse_duration)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("invalid --expiry")?;
    let user_metadata = sign::parse_user_metadata(user_metadata).map_err(anyhow::Error::msg)?;
    Ok(SignSettings {
        format: match format {
            SignatureFormatArg::Jws => EnvelopeFormat::Jws,
            SignatureFormatArg::Cose => EnvelopeFormat::Cose,
        },
        expiry,
        user_metadata,
        manifest_form: match manifest_form {
            ManifestFormArg::Legacy => ManifestForm::Legacy,
            ManifestFormArg::ArtifactType => ManifestForm::ArtifactType,
        },
        concurrency: concurrency.max(1),
    })
}

async fn run_sign(args: SignArgs) -> Result<i32> {
    let output = args.output;
    let request = SignRequest::from_args(&args)?;
    let report = match execute_sign(request, &|w| eprintln!("warning: {w}")).await {
        Ok(report) => report,
        Err(e) => return Err(e),
    };
    print_sign_report(&report, output);
    Ok(if report.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// Load the signer, check it, open the store and sign every reference. Errors returned here
/// are configuration errors (nothing was signed); per-artifact failures are in the report.
pub async fn execute_sign(
    request: SignRequest,
    on_warning: &(dyn Fn(&str) + Sync),
) -> Result<SignReport> {
    let chain = sign_action::x509::parse_certificates(&request.chain_pem, "the certificate chain")
        .context("invalid certificate chain")?;
    let chain_der: Vec<Vec<u8>> = chain.iter().map(|c| c.der().to_vec()).collect();
    let signer =
        LocalSigner::from_pem(&request.key_pem, request.key_password.as_deref(), chain_der)?;
    let signer: Arc<dyn Signer> = Arc::new(signer);
    sign::preflight(signer.as_ref(), &request.settings)?;
    let (store, targets) = open_store(&request.store, &request.references)?;
    Ok(sign::sign_all(store, targets, signer, None, &request.settings, on_warning).await)
}

/// Open the store the references live in and parse them.
pub fn open_store(
    store: &StoreConfig,
    references: &[String],
) -> Result<(Arc<dyn ArtifactStore>, Vec<SignTarget>)> {
    let options = registry_options(store, references);
    let (store, parsed) = sign_action::oci::open_store(options, store.oci_layout, references)?;
    let targets = references
        .iter()
        .cloned()
        .zip(parsed)
        .map(|(input, reference)| SignTarget { input, reference })
        .collect();
    Ok((store, targets))
}

/// Registry options: explicit credentials go to the registries of this run's references only;
/// the GitHub token only to ghcr.io. Loopback registries are plain HTTP (as docker treats
/// localhost) unless a registry CA is given, which means the user runs TLS.
pub fn registry_options(store: &StoreConfig, references: &[String]) -> RegistryOptions {
    let mut options = RegistryOptions {
        extra_root_certs_pem: store.registry_ca_pem.clone(),
        plain_http: store.registry_ca_pem.is_empty(),
        insecure_hosts: store.insecure_registries.clone(),
        ..RegistryOptions::default()
    };
    if store.oci_layout {
        return options;
    }
    let hosts: std::collections::BTreeSet<String> = references
        .iter()
        .filter_map(|r| Reference::parse(r).ok())
        .map(|r| r.registry)
        .collect();
    if let (Some(username), Some(password)) = (&store.username, &store.password) {
        for host in &hosts {
            options.credentials.insert(
                host.clone(),
                Credential::Basic {
                    username: username.clone(),
                    password: password.clone(),
                },
            );
        }
    } else if let Some(token) = &store.github_token {
        if hosts.contains("ghcr.io") {
            options.credentials.insert(
                "ghcr.io".to_string(),
                Credential::Basic {
                    username: store
                        .username
                        .clone()
                        .unwrap_or_else(|| "github-actions".to_string()),
                    password: token.clone(),
                },
            );
        }
    }
    options
}

pub fn print_sign_report(report: &SignReport, output: OutputFormat) {
    match output {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(report).expect("reports serialise")
            );
        }
        OutputFormat::Text => {
            for s in &report.signatures {
                println!(
                    "signed {} ({}) -> signature {} [{}, {}]",
                    s.reference,
                    s.digest,
                    s.signature_digest,
                    s.signature_format,
                    s.storage.as_str()
                );
            }
            for f in &report.failures {
                println!("FAILED {}: {}", f.reference, f.error);
            }
        }
    }
}
