//! Turns parsed arguments into library calls and results into output and exit codes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use anyhow::{Context, Result};

use sign_action::crypto::{LocalSigner, Signer};
use sign_action::envelope::EnvelopeFormat;
use sign_action::oci::registry::{Credential, RegistryOptions};
use sign_action::oci::{ArtifactStore, ManifestForm, Reference};
use sign_action::oidc::{IdToken, TokenSource};
use sign_action::sign::{self, SignReport, SignSettings, SignTarget};
use sign_action::signers::{
    AwsKmsConfig, AwsKmsSigner, AzureKeyVaultSigner, AzureKvConfig, KeySelector, KeylessSigner,
    Pkcs11Config, Pkcs11Signer, Plugin, PluginSigner, TokenSelector,
};

use std::collections::{BTreeMap, HashMap};

use sign_action::inspect::InspectReport;
use sign_action::policy::store::{default_config_dir, TrustStore};
use sign_action::policy::TrustPolicyDocument;
use sign_action::revocation::{RevocationChecker, RevocationStatus};
use sign_action::verify::{
    self, ArtifactVerification, EffectivePolicy, VerifySettings, VerifyTarget,
};

use crate::cli::{
    ActionKind, CertCommand, Cli, Command, KmsProvider, ListArgs, ManifestFormArg, OutputFormat,
    SignArgs, SignatureFormatArg, StoreArgs, VerifyArgs,
};

/// Exit codes, as documented in the README.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

pub async fn run(cli: Cli) -> i32 {
    let outcome = match cli.command {
        Command::Sign(args) => run_sign(*args).await,
        Command::Cert(CertCommand::GenerateTest { name, dir }) => generate_test(&name, &dir),
        Command::Action {
            kind: ActionKind::Sign,
        } => Ok(crate::action::run::sign_action().await),
        Command::Action {
            kind: ActionKind::Verify,
        } => Ok(crate::action::run::verify_action().await),
        Command::Action {
            kind: ActionKind::Check,
        } => Ok(crate::action::check::check_action().await),
        Command::Check(args) => crate::run_check::run_check(*args).await,
        Command::Verify(args) => run_verify(args).await,
        Command::List(args) => run_inspect(args, false).await,
        Command::Inspect(args) => run_inspect(args, true).await,
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
    /// Directory of the docker `config.json` to read credentials from, instead of
    /// `$DOCKER_CONFIG` / `~/.docker` (the action sets it when it must translate a path).
    pub docker_config_dir: Option<std::path::PathBuf>,
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
            docker_config_dir: None,
        })
    }
}

/// Everything a signing run needs, built from CLI arguments or action inputs.
pub struct SignRequest {
    pub references: Vec<String>,
    pub key: KeySource,
    /// PEM chain, leaf first. Required for a local key; a token may hold the chain instead.
    pub chain_pem: Option<Vec<u8>>,
    pub settings: SignSettings,
    pub store: StoreConfig,
    /// TSA URL and the PEM roots its chain must lead to.
    pub timestamp: Option<(String, Vec<u8>)>,
    /// Check the signing chain's revocation before signing.
    pub check_revocation: bool,
}

/// Where the private key is.
pub enum KeySource {
    /// A PEM key read into memory.
    Local {
        key_pem: Vec<u8>,
        password: Option<String>,
    },
    /// A key in a PKCS#11 token.
    Pkcs11 {
        module: PathBuf,
        token: Option<String>,
        key: String,
        pin: Option<Zeroizing<String>>,
    },
    /// A notation plugin with the RAW generator capability.
    Plugin {
        name: String,
        /// The executable; `None` looks in notation's plugin directory.
        path: Option<PathBuf>,
        key_id: String,
        config: BTreeMap<String, String>,
    },
    /// An ephemeral key certified by a Fulcio CA for the identity of an OIDC token.
    Keyless(KeylessSource),
    /// A cloud KMS key reached through OIDC federation. The builders set `token_source`; the
    /// async caller obtains the token (masking it in action mode) before `execute_sign`.
    Kms {
        key: Box<KmsKey>,
        token_source: TokenSource,
        token: Option<IdToken>,
    },
}

/// Which cloud key, and how to reach it (the chain is filled in from `SignRequest::chain_pem`).
pub enum KmsKey {
    Azure(AzureKvConfig),
    Aws(AwsKmsConfig),
}

impl KeySource {
    /// The OIDC token this key source still needs, if any (keyless signing, KMS federation).
    pub fn pending_oidc_token(&self) -> Option<TokenSource> {
        match self {
            KeySource::Kms {
                token_source,
                token: None,
                ..
            }
            | KeySource::Keyless(KeylessSource {
                token_source,
                token: None,
                ..
            }) => Some(token_source.clone()),
            _ => None,
        }
    }

    pub fn set_oidc_token(&mut self, id_token: IdToken) {
        match self {
            KeySource::Kms { token, .. } | KeySource::Keyless(KeylessSource { token, .. }) => {
                *token = Some(id_token)
            }
            _ => {}
        }
    }

    /// What the OIDC token is for, in error messages.
    pub fn oidc_purpose(&self) -> &'static str {
        match self {
            KeySource::Keyless(_) => "keyless signing",
            _ => "KMS federation",
        }
    }
}

/// The KMS key source from CLI-shaped values; shared by the CLI and the action builders.
pub struct KmsSettings {
    pub provider: KmsProvider,
    pub key: String,
    pub azure_tenant_id: Option<String>,
    pub azure_client_id: Option<String>,
    pub azure_authority_host: Option<String>,
    pub aws_role_arn: Option<String>,
    pub aws_region: Option<String>,
    pub aws_sts_endpoint: Option<String>,
    pub aws_kms_endpoint: Option<String>,
    pub oidc: OidcChoice,
}

/// Where keyless and KMS signing get their OIDC token: a file, an environment variable, or
/// (the default) GitHub Actions' token endpoint for an audience.
#[derive(Debug, Clone, Default)]
pub struct OidcChoice {
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub audience: Option<String>,
}

impl OidcChoice {
    pub fn source(&self, default_audience: &str) -> TokenSource {
        if let Some(path) = &self.token_file {
            return TokenSource::File(path.clone());
        }
        if let Some(name) = &self.token_env {
            return TokenSource::Env(name.clone());
        }
        TokenSource::GitHubActions {
            audience: self
                .audience
                .clone()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| default_audience.to_string()),
        }
    }
}

impl KmsSettings {
    /// `what` names the option for messages: a flag (`--azure-tenant-id`) or an input.
    pub fn into_key_source(self, what: &dyn Fn(&str) -> String) -> Result<KeySource> {
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let (key, default_audience) = match self.provider {
            KmsProvider::Azure => (
                KmsKey::Azure(AzureKvConfig {
                    key_id: self.key,
                    tenant_id: non_empty(self.azure_tenant_id).with_context(|| {
                        format!(
                            "{} is required with Azure Key Vault",
                            what("azure-tenant-id")
                        )
                    })?,
                    client_id: non_empty(self.azure_client_id).with_context(|| {
                        format!(
                            "{} is required with Azure Key Vault",
                            what("azure-client-id")
                        )
                    })?,
                    authority_host: non_empty(self.azure_authority_host),
                    chain: None,
                }),
                sign_action::signers::azure_kv::DEFAULT_AUDIENCE,
            ),
            KmsProvider::Aws => (
                KmsKey::Aws(AwsKmsConfig {
                    key_id: self.key,
                    role_arn: non_empty(self.aws_role_arn).with_context(|| {
                        format!("{} is required with AWS KMS", what("aws-role-arn"))
                    })?,
                    region: non_empty(self.aws_region),
                    sts_endpoint: non_empty(self.aws_sts_endpoint),
                    kms_endpoint: non_empty(self.aws_kms_endpoint),
                    session_name: None,
                    chain: Vec::new(),
                }),
                sign_action::signers::aws_kms::DEFAULT_AUDIENCE,
            ),
        };
        let token_source = self.oidc.source(default_audience);
        Ok(KeySource::Kms {
            key: Box::new(key),
            token_source,
            token: None,
        })
    }
}

/// Where a keyless certificate comes from and with which token.
pub struct KeylessSource {
    pub fulcio_url: String,
    pub token_source: sign_action::oidc::TokenSource,
    /// Set when the token was obtained already (the action masks it before anything else
    /// runs); otherwise it is obtained when the signer is opened.
    pub token: Option<sign_action::oidc::IdToken>,
}

impl KeylessSource {
    /// The source for `--keyless`: the token `oidc` names (GitHub Actions' token for the
    /// audience `sigstore` by default), and Fulcio at `fulcio_url` (default Sigstore's).
    pub fn new(fulcio_url: Option<&str>, oidc: &OidcChoice) -> KeylessSource {
        use sign_action::signers::keyless::{DEFAULT_FULCIO_URL, DEFAULT_OIDC_AUDIENCE};
        KeylessSource {
            fulcio_url: fulcio_url.unwrap_or(DEFAULT_FULCIO_URL).to_string(),
            token_source: oidc.source(DEFAULT_OIDC_AUDIENCE),
            token: None,
        }
    }
}

/// Keyless signing needs a timestamp: checked when the request is built, before any token
/// is requested.
pub fn require_keyless_timestamp(has_timestamp: bool, flag: &str) -> Result<()> {
    if !has_timestamp {
        anyhow::bail!(
            "{flag} requires a timestamp authority ({}): a keyless certificate is valid for about ten minutes, so a signature without an RFC 3161 timestamp stops verifying when it expires",
            if flag.starts_with("--") {
                "--timestamp-url and --timestamp-root-cert"
            } else {
                "inputs `timestamp-url` and `timestamp-root-cert`"
            }
        );
    }
    Ok(())
}

/// `KEY=VALUE` pairs into a plugin configuration map.
pub fn parse_plugin_config(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut config = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("plugin configuration {pair:?} is not KEY=VALUE"))?;
        config.insert(k.to_string(), v.to_string());
    }
    Ok(config)
}

impl SignRequest {
    pub fn from_args(args: &SignArgs) -> Result<SignRequest> {
        if args.keyless {
            require_keyless_timestamp(args.timestamp_url.is_some(), "--keyless")?;
            if args.cert.is_some() {
                anyhow::bail!(
                    "--cert cannot be given with --keyless: the certificate chain comes from the Fulcio CA"
                );
            }
        } else if args.kms.is_none()
            && (args.oidc_audience.is_some()
                || args.oidc_token_file.is_some()
                || args.oidc_token_env.is_some())
        {
            anyhow::bail!(
                "--oidc-audience, --oidc-token-file and --oidc-token-env apply only with --keyless or --kms"
            );
        }
        let oidc = OidcChoice {
            token_file: args.oidc_token_file.clone(),
            token_env: args.oidc_token_env.clone(),
            audience: args.oidc_audience.clone(),
        };
        let key = match (&args.key, &args.pkcs11_module) {
            (None, None) if args.kms.is_some() => KmsSettings {
                provider: args.kms.unwrap_or(KmsProvider::Azure),
                key: args
                    .kms_key
                    .clone()
                    .context("--kms-key is required with --kms")?,
                azure_tenant_id: args.azure_tenant_id.clone(),
                azure_client_id: args.azure_client_id.clone(),
                azure_authority_host: args.azure_authority_host.clone(),
                aws_role_arn: args.aws_role_arn.clone(),
                aws_region: args.aws_region.clone(),
                aws_sts_endpoint: args
                    .aws_sts_endpoint
                    .clone()
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
                aws_kms_endpoint: args
                    .aws_kms_endpoint
                    .clone()
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
                oidc: oidc.clone(),
            }
            .into_key_source(&|name| format!("--{name}"))?,
            (None, None) if args.keyless => {
                KeySource::Keyless(KeylessSource::new(args.fulcio_url.as_deref(), &oidc))
            }
            (None, None) if args.plugin.is_some() => KeySource::Plugin {
                name: args.plugin.clone().unwrap_or_default(),
                path: args.plugin_path.clone(),
                key_id: args
                    .plugin_key_id
                    .clone()
                    .context("--plugin-key-id is required with --plugin")?,
                config: parse_plugin_config(&args.plugin_config)?,
            },
            (Some(path), None) => KeySource::Local {
                key_pem: std::fs::read(path)
                    .with_context(|| format!("cannot read the key file {}", path.display()))?,
                password: args.key_password.clone(),
            },
            (None, Some(module)) => KeySource::Pkcs11 {
                module: module.clone(),
                token: args.pkcs11_token.clone(),
                key: args
                    .pkcs11_key
                    .clone()
                    .context("--pkcs11-key is required with --pkcs11-module")?,
                pin: args.pkcs11_pin.clone().map(Zeroizing::new),
            },
            _ => anyhow::bail!(
                "give exactly one of --key, --pkcs11-module, --plugin, --keyless or --kms"
            ),
        };
        let chain_pem = args
            .cert
            .as_ref()
            .map(|cert| {
                std::fs::read(cert)
                    .with_context(|| format!("cannot read the certificate file {}", cert.display()))
            })
            .transpose()?;
        let mut settings = settings_from(
            args.signature_format,
            args.expiry.as_deref(),
            &args.user_metadata,
            args.manifest_form,
            args.concurrency,
        )?;
        settings.recursive = args.recursive;
        Ok(SignRequest {
            references: args.references.clone(),
            key,
            chain_pem,
            settings,
            store: StoreConfig::from_args(&args.store)?,
            check_revocation: !args.no_revocation_check,
            timestamp: match (&args.timestamp_url, &args.timestamp_root_cert) {
                (Some(url), Some(root)) => Some((
                    url.clone(),
                    std::fs::read(root).with_context(|| {
                        format!("cannot read the TSA root certificate {}", root.display())
                    })?,
                )),
                _ => None,
            },
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
        recursive: false,
    })
}

async fn run_sign(args: SignArgs) -> Result<i32> {
    let output = args.output;
    let mut request = SignRequest::from_args(&args)?;
    if let Some(source) = request.key.pending_oidc_token() {
        let purpose = request.key.oidc_purpose();
        let token = sign_action::oidc::obtain(&source)
            .await
            .with_context(|| format!("cannot obtain the OIDC token for {purpose}"))?;
        request.key.set_oidc_token(token);
    }
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
    let chain_der = match &request.chain_pem {
        Some(pem) => Some(
            sign_action::x509::parse_certificates(pem, "the certificate chain")
                .context("invalid certificate chain")?
                .iter()
                .map(|c| c.der().to_vec())
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let signer = open_signer(request.key, chain_der).await?;
    sign::preflight(signer.as_ref(), &request.settings)?;
    // Envelope-building plugins have no chain up front (their envelopes are checked instead).
    if request.check_revocation && !signer.certificate_chain().is_empty() {
        let chain = signer
            .certificate_chain()
            .iter()
            .map(|der| sign_action::x509::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .context("invalid certificate chain")?;
        check_signing_chain_revocation(&chain, on_warning).await?;
    }
    let timestamper = match &request.timestamp {
        Some((url, roots_pem)) => {
            let roots =
                sign_action::x509::parse_certificates(roots_pem, "the TSA root certificate")
                    .context("invalid TSA root certificate")?;
            let tsa = sign_action::timestamp::HttpTimestamper::new(url, roots)
                .context("invalid timestamp authority")?;
            Some(Arc::new(tsa) as Arc<dyn sign_action::envelope::Timestamper>)
        }
        None => None,
    };
    let (store, targets) = open_store(&request.store, &request.references)?;
    Ok(sign::sign_all(
        store,
        targets,
        signer,
        timestamper,
        &request.settings,
        on_warning,
    )
    .await)
}

/// Build the signer for the chosen key source.
async fn open_signer(key: KeySource, chain_der: Option<Vec<Vec<u8>>>) -> Result<Arc<dyn Signer>> {
    match key {
        KeySource::Local { key_pem, password } => {
            let chain_der = chain_der.context(
                "a certificate chain is required with a local key (--cert / input `certificate-chain`)",
            )?;
            let signer = LocalSigner::from_pem(&key_pem, password.as_deref(), chain_der)?;
            Ok(Arc::new(signer))
        }
        KeySource::Pkcs11 {
            module,
            token,
            key,
            pin,
        } => {
            let config = Pkcs11Config {
                token: token.as_deref().map(TokenSelector::parse).transpose()?,
                key: KeySelector::parse(&key)?,
                pin: pin.unwrap_or_default(),
                chain: chain_der,
                module,
            };
            // Loading the module and logging in block; keep them off the async workers.
            let signer = tokio::task::spawn_blocking(move || Pkcs11Signer::open(config))
                .await
                .context("the PKCS#11 task failed")??;
            Ok(Arc::new(signer))
        }
        KeySource::Plugin {
            name,
            path,
            key_id,
            config,
        } => {
            if chain_der.is_some() {
                anyhow::bail!(
                    "a certificate chain cannot be given with a plugin: the plugin returns it"
                );
            }
            let plugin = match path {
                Some(path) => Plugin::at(&name, &path)?,
                None => {
                    let dir = default_config_dir().context(
                        "cannot find notation's configuration directory; give --plugin-path",
                    )?;
                    Plugin::installed(&dir, &name)?
                }
            };
            Ok(Arc::new(PluginSigner::open(plugin, &key_id, config).await?))
        }
        KeySource::Kms { key, token, .. } => {
            let token = token.context("no OIDC token was obtained for the KMS key")?;
            match *key {
                KmsKey::Azure(mut config) => {
                    config.chain = chain_der;
                    Ok(Arc::new(AzureKeyVaultSigner::open(config, &token).await?))
                }
                KmsKey::Aws(mut config) => {
                    config.chain = chain_der.context(
                        "a certificate chain is required with AWS KMS, which stores no certificates (--cert / input `certificate-chain`)",
                    )?;
                    Ok(Arc::new(AwsKmsSigner::open(config, &token).await?))
                }
            }
        }
        KeySource::Keyless(source) => {
            if chain_der.is_some() {
                anyhow::bail!(
                    "a certificate chain cannot be given with keyless signing: the Fulcio CA issues it"
                );
            }
            let token = match source.token {
                Some(token) => token,
                None => sign_action::oidc::obtain(&source.token_source)
                    .await
                    .context("cannot obtain the OIDC token for keyless signing")?,
            };
            let signer = KeylessSigner::obtain(&source.fulcio_url, &token)
                .await
                .context("cannot obtain a keyless signing certificate")?;
            announce_keyless_identity(signer.identity());
            Ok(Arc::new(signer))
        }
    }
}

/// Keyless signing prints whom the certificate names before anything is signed, so a log
/// shows the identity even when every artifact then fails.
fn announce_keyless_identity(identity: &sign_action::x509::fulcio::KeylessIdentity) {
    eprintln!(
        "obtained a keyless signing certificate for {}",
        identity.describe()
    );
}

/// A revoked signing certificate is refused before anything is signed; an unknown status
/// (responder down, no CRL) is a warning, since verifiers will judge it again.
async fn check_signing_chain_revocation(
    chain: &[sign_action::x509::Certificate],
    on_warning: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let checker = RevocationChecker::new().context("cannot set up revocation checking")?;
    let outcome = checker.check_chain(chain, None).await;
    match outcome.status {
        RevocationStatus::Good => Ok(()),
        RevocationStatus::Revoked => {
            anyhow::bail!("the signing {outcome}; signing with a revoked certificate is refused")
        }
        RevocationStatus::Unknown => {
            on_warning(&format!(
                "could not confirm that the signing certificates are not revoked ({outcome}); signing anyway"
            ));
            Ok(())
        }
    }
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
        .map(|(input, reference)| SignTarget {
            input,
            reference,
            platform: None,
        })
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
        docker_config_dir: store.docker_config_dir.clone(),
        ..RegistryOptions::default()
    };
    // Per-request timeout for slow registries (and for tests of stalled connections).
    if let Some(secs) = std::env::var("SIGN_ACTION_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
    {
        options.timeout = std::time::Duration::from_secs(secs);
    }
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
                let platform = s
                    .platform
                    .as_deref()
                    .map(|p| format!(" platform {p}"))
                    .unwrap_or_default();
                println!(
                    "signed {}{platform} ({}) -> signature {} [{}, {}]",
                    s.reference,
                    s.digest,
                    s.signature_digest,
                    s.signature_format,
                    s.storage.as_str()
                );
                if let Some(id) = &s.keyless_identity {
                    println!("  keyless identity: {}", keyless_line(id));
                }
            }
            for f in &report.failures {
                println!("FAILED {}: {}", f.reference, f.error);
            }
        }
    }
}

/// The identity a keyless certificate binds, on one line: workflow URI, repository, ref,
/// issuer.
pub fn keyless_line(id: &sign_action::x509::fulcio::KeylessIdentity) -> String {
    let mut parts = vec![id.describe()];
    if let Some(r) = &id.repository {
        parts.push(format!("repository {r}"));
    }
    if let Some(r) = &id.git_ref {
        parts.push(format!("ref {r}"));
    }
    if let Some(c) = &id.commit {
        parts.push(format!("commit {c}"));
    }
    parts.join(", ")
}

/// Everything a verification run needs, built from CLI arguments or action inputs.
pub struct VerifyRequest {
    pub references: Vec<String>,
    pub policy: TrustPolicyDocument,
    pub trust_store: TrustStore,
    /// Policy scope for OCI layouts, which have no registry name.
    pub scope: Option<String>,
    pub settings: VerifySettings,
    pub store: StoreConfig,
    /// Verify an image index and every manifest it lists.
    pub recursive: bool,
}

/// Load the trust policy (a file, inline JSON, or notation's default location).
pub fn load_policy(explicit: Option<&Path>) -> Result<TrustPolicyDocument> {
    match explicit {
        Some(path) => TrustPolicyDocument::load_file(path)
            .with_context(|| format!("invalid trust policy {}", path.display())),
        None => {
            let dir = default_config_dir()
                .context("cannot find notation's configuration directory: give --trust-policy")?;
            TrustPolicyDocument::load_from_config_dir(&dir).context("invalid trust policy")
        }
    }
}

pub fn open_trust_store(explicit: Option<&Path>) -> Result<TrustStore> {
    match explicit {
        Some(dir) => TrustStore::open(dir)
            .with_context(|| format!("cannot open the trust store {}", dir.display())),
        None => TrustStore::open_default().context("cannot open the trust store"),
    }
}

pub fn verify_settings(
    max_signatures: usize,
    user_metadata: &[String],
    revocation_cache: Option<&Path>,
) -> Result<VerifySettings> {
    let user_metadata = sign::parse_user_metadata(user_metadata).map_err(anyhow::Error::msg)?;
    if max_signatures == 0 {
        anyhow::bail!("--max-signatures must be at least 1");
    }
    let mut checker = RevocationChecker::new().context("cannot set up revocation checking")?;
    if let Some(dir) = revocation_cache {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the revocation cache {}", dir.display()))?;
        checker = checker.with_cache_dir(dir);
    }
    Ok(VerifySettings {
        max_signatures,
        user_metadata,
        revocation: Some(Arc::new(checker)),
        plugin_dir: None,
        plugin_config: BTreeMap::new(),
        allow_any_keyless_identity: false,
    })
}

impl VerifyRequest {
    pub fn from_args(args: &VerifyArgs) -> Result<VerifyRequest> {
        Ok(VerifyRequest {
            references: args.references.clone(),
            policy: load_policy(args.trust_policy.as_deref())?,
            trust_store: open_trust_store(args.trust_store.as_deref())?,
            scope: args.scope.clone(),
            settings: VerifySettings {
                plugin_config: parse_plugin_config(&args.plugin_config)?,
                allow_any_keyless_identity: args.allow_any_keyless_identity,
                ..verify_settings(
                    args.max_signatures,
                    &args.user_metadata,
                    args.revocation_cache.as_deref(),
                )?
            },
            store: StoreConfig::from_args(&args.store)?,
            recursive: args.recursive,
        })
    }
}

/// Select the policy for every reference and load its stores, then verify. Errors returned
/// here are configuration errors; per-artifact outcomes are in the results.
pub async fn execute_verify(request: VerifyRequest) -> Result<Vec<ArtifactVerification>> {
    // A scope picks the trust policy, so a mistyped one must not silently fall through to
    // the "*" statement, and one given for registry references (whose scope is their
    // repository) must not be silently ignored.
    if let Some(scope) = &request.scope {
        if !request.store.oci_layout {
            anyhow::bail!(
                "--scope applies only with --oci-layout: a registry reference's scope is its own registry/repository"
            );
        }
        if !sign_action::policy::document::is_valid_registry_scope(scope) {
            anyhow::bail!(
                "invalid --scope {scope:?}: give a registry scope as it appears in the trust policy, host[:port]/repository (e.g. registry.example/app)"
            );
        }
    }
    let (store, targets) = open_store(&request.store, &request.references)?;
    let mut policies: HashMap<String, Arc<EffectivePolicy>> = HashMap::new();
    let mut to_verify = Vec::new();
    let mut early: Vec<(usize, ArtifactVerification)> = Vec::new();
    for (i, target) in targets.into_iter().enumerate() {
        let scope = if request.store.oci_layout {
            request.scope.clone().context(
                "--scope is required with --oci-layout: name the registry scope whose trust policy applies (e.g. registry.example/app)",
            )?
        } else {
            target.reference.fully_qualified_without_digest()
        };
        let statement = match request.policy.select(&scope) {
            Ok(s) => s,
            Err(e) => {
                early.push((
                    i,
                    ArtifactVerification::failed(&target.input, e.to_string()),
                ));
                continue;
            }
        };
        let policy = match policies.get(&statement.name) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(
                    EffectivePolicy::from_statement(statement, &request.trust_store)
                        .with_context(|| format!("trust policy statement {:?}", statement.name))?,
                );
                policies.insert(statement.name.clone(), p.clone());
                p
            }
        };
        to_verify.push((
            i,
            VerifyTarget {
                input: target.input,
                reference: target.reference,
                policy,
            },
        ));
    }
    let order: Vec<usize> = to_verify.iter().map(|(i, _)| *i).collect();
    let to_verify = to_verify.into_iter().map(|(_, t)| t).collect();
    let verified = if request.recursive {
        verify::verify_all_recursive(store, to_verify, &request.settings, 4).await
    } else {
        verify::verify_all(store, to_verify, &request.settings, 4).await
    };
    let mut all: Vec<(usize, ArtifactVerification)> = order.into_iter().zip(verified).collect();
    all.extend(early);
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, r)| r).collect())
}

async fn run_verify(args: VerifyArgs) -> Result<i32> {
    let output = args.output;
    let request = VerifyRequest::from_args(&args)?;
    let results = execute_verify(request).await?;
    print_verify_results(&results, output);
    Ok(if results.iter().all(|r| r.verified) {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

pub fn print_verify_results(results: &[ArtifactVerification], output: OutputFormat) {
    match output {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "verified": results.iter().all(|r| r.verified),
                "results": results,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("serialises")
            );
        }
        OutputFormat::Text => {
            for r in results {
                let digest = r.digest.as_deref().unwrap_or("?");
                if r.verified {
                    match &r.signature {
                        Some(sig) => println!(
                            "verified {} ({digest}): signature {} by {:?}, signed {}, policy {:?} ({})",
                            r.reference,
                            sig.digest,
                            sig.signer_subject.as_deref().unwrap_or("?"),
                            sig.signing_time.as_deref().unwrap_or("?"),
                            r.policy.as_deref().unwrap_or("?"),
                            r.level.as_deref().unwrap_or("?"),
                        ),
                        None => println!(
                            "verified {} ({digest}): policy {:?} skips verification",
                            r.reference,
                            r.policy.as_deref().unwrap_or("?")
                        ),
                    }
                } else {
                    println!(
                        "FAILED {}: {}",
                        r.reference,
                        r.error.as_deref().unwrap_or("verification failed")
                    );
                }
                if let Some(id) = r
                    .signature
                    .as_ref()
                    .and_then(|s| s.keyless_identity.as_ref())
                {
                    println!("  keyless identity: {}", keyless_line(id));
                }
                if let Some(ts) = r.signature.as_ref().and_then(|s| s.timestamp.as_ref()) {
                    println!(
                        "  timestamped {} by {:?} (range {} to {})",
                        ts.gen_time, ts.tsa_subject, ts.range_start, ts.range_end
                    );
                }
                for p in &r.platforms {
                    let c = &p.result;
                    println!(
                        "  platform {} {} ({}): {}",
                        p.platform.as_deref().unwrap_or("-"),
                        if c.verified { "verified" } else { "FAILED" },
                        c.digest.as_deref().unwrap_or("?"),
                        match (&c.signature, &c.error) {
                            (_, Some(e)) => e.clone(),
                            (Some(sig), None) => format!("signature {}", sig.digest),
                            (None, None) => "policy skips verification".to_string(),
                        }
                    );
                }
                for w in &r.warnings {
                    eprintln!("warning: {}: {w}", r.reference);
                }
            }
        }
    }
}

async fn run_inspect(args: ListArgs, details: bool) -> Result<i32> {
    let store_config = StoreConfig::from_args(&args.store)?;
    let references = vec![args.reference.clone()];
    let (store, targets) = open_store(&store_config, &references)?;
    let target = &targets[0];
    let report = match sign_action::inspect::inspect(
        store.as_ref(),
        &target.input,
        &target.reference,
        args.max_signatures.max(1),
        details,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", target.input);
            return Ok(EXIT_FAILED);
        }
    };
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialises")
        ),
        OutputFormat::Text => print_inspect(&report, details),
    }
    Ok(EXIT_OK)
}

fn print_inspect(report: &InspectReport, details: bool) {
    println!(
        "{} ({}, {})",
        report.reference, report.digest, report.media_type
    );
    if report.signatures.is_empty() {
        println!("  no signatures");
    }
    for s in &report.signatures {
        println!("  signature {}", s.digest);
        if !details {
            continue;
        }
        if let Some(e) = &s.error {
            println!("    unreadable: {e}");
            continue;
        }
        let field = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                println!("    {name}: {v}");
            }
        };
        field("media type", &s.media_type);
        field("signing scheme", &s.signing_scheme);
        field("signing time", &s.signing_time);
        field("expiry", &s.expiry);
        field("signing agent", &s.signing_agent);
        println!(
            "    timestamped: {}",
            if s.timestamped == Some(true) {
                "yes"
            } else {
                "no"
            }
        );
        if let Some(ts) = &s.timestamp {
            match &ts.error {
                Some(e) => println!("    timestamp: unreadable: {e}"),
                None => {
                    println!(
                        "    timestamp: {} (range {} to {}) by {}",
                        ts.gen_time.as_deref().unwrap_or("?"),
                        ts.range_start.as_deref().unwrap_or("?"),
                        ts.range_end.as_deref().unwrap_or("?"),
                        ts.tsa_subject.as_deref().unwrap_or("?")
                    );
                    for (i, fp) in ts.tsa_certificates.iter().enumerate() {
                        println!("      TSA certificate #{}: sha256 {fp}", i + 1);
                    }
                }
            }
        }
        for (k, v) in &s.user_metadata {
            println!("    user metadata: {k}={v}");
        }
        for (i, c) in s.certificate_chain.iter().enumerate() {
            println!("    certificate #{}: {}", i + 1, c.subject);
            println!("      issuer: {}", c.issuer);
            println!("      sha256: {}", c.sha256_fingerprint);
            println!("      valid: {} to {}", c.not_before, c.not_after);
            if let Some(id) = &c.keyless_identity {
                println!("      keyless identity: {}", keyless_line(id));
            }
        }
    }
    if report.truncated {
        println!("  (more signatures exist; raise --max-signatures to see them)");
    }
}
