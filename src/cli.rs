//! Command-line definitions. The action adapter builds the same argument structs from
//! `INPUT_*`, so both edges drive one code path.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "sign-action",
    version,
    about = "Sign and verify OCI artifacts in the Notary Project signature format",
    long_about = "Sign and verify OCI artifacts (images, Helm charts, any manifest) with Notary \
                  Project signatures that notation, Ratify and Kyverno accept.\n\nExit codes: 0 \
                  success, 1 an artifact failed to sign or verify, 2 usage or configuration error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign artifacts and push the signatures as OCI referrers.
    Sign(Box<SignArgs>),
    /// Verify artifacts against a notation trust policy and trust store.
    Verify(VerifyArgs),
    /// Find the image references in Kubernetes manifests, Compose files, Dockerfiles and
    /// workflows, and verify each distinct image once against the trust policy.
    Check(Box<CheckArgs>),
    /// List the signatures of an artifact.
    List(ListArgs),
    /// Show every signature of an artifact in detail.
    Inspect(ListArgs),
    /// Certificate helpers.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Run as a GitHub Action: read INPUT_* variables, write GITHUB_OUTPUT and the step summary.
    Action {
        /// Which action: sign (action.yml), verify (verify/action.yml) or check
        /// (check/action.yml).
        #[arg(value_enum, default_value_t = ActionKind::Sign)]
        kind: ActionKind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionKind {
    Sign,
    Verify,
    Check,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create an RSA-2048 self-signed code-signing key and certificate plus a notation-style
    /// trust store and trust policy that trust it. For tests and demos only.
    GenerateTest {
        /// Certificate name (becomes CN and the trust store name).
        name: String,
        /// Directory to write into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Cloud key services reached through OIDC federation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KmsProvider {
    /// Azure Key Vault.
    Azure,
    /// AWS KMS.
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SignatureFormatArg {
    #[default]
    Jws,
    Cose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ManifestFormArg {
    /// config.mediaType application/vnd.cncf.notary.signature (what notation 1.x writes).
    #[default]
    Legacy,
    /// OCI 1.1 artifactType with the empty config.
    ArtifactType,
}

/// Where artifacts live and how to reach them.
#[derive(Debug, Clone, Args, Default)]
pub struct StoreArgs {
    /// Treat references as OCI image layouts on disk: `DIR:TAG` or `DIR@sha256:…`.
    #[arg(long)]
    pub oci_layout: bool,
    /// Registry user name (for every registry of this run).
    #[arg(long, short = 'u', env = "SIGN_ACTION_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password or token.
    #[arg(
        long,
        short = 'p',
        env = "SIGN_ACTION_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Allow plain HTTP to this registry host[:port] (repeatable). Loopback hosts are always allowed.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Extra PEM CA certificates to trust for registry TLS.
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[group(id = "key_source", required = true, multiple = false, args = ["key", "pkcs11_module", "plugin", "keyless", "kms"])]
pub struct SignArgs {
    /// Artifacts to sign: `registry/repo@sha256:…` (or `:tag`, resolved with a warning).
    #[arg(required = true, value_name = "REFERENCE")]
    pub references: Vec<String>,
    /// PEM private key (PKCS#8, encrypted PKCS#8, SEC1 EC or PKCS#1 RSA).
    #[arg(long, short = 'k', value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key.
    #[arg(long, env = "SIGN_ACTION_KEY_PASSWORD", hide_env_values = true)]
    pub key_password: Option<String>,
    /// PEM certificate chain: leaf first, root last (a single self-signed certificate is fine).
    /// Required with --key and --kms aws; with --pkcs11-module (or --kms azure) the chain is
    /// read from the token (or the Key Vault certificate) when absent.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PKCS#11 module (shared library) holding the signing key, e.g. /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, value_name = "PATH", requires = "pkcs11_key")]
    pub pkcs11_module: Option<PathBuf>,
    /// Token to use: `slot:N`, `label:NAME` or a plain label (default: the only token present).
    #[arg(long, value_name = "TOKEN", requires = "pkcs11_module")]
    pub pkcs11_token: Option<String>,
    /// Private key on the token: `id:HEX`, `label:NAME` or a plain label.
    #[arg(long, value_name = "KEY", requires = "pkcs11_module")]
    pub pkcs11_key: Option<String>,
    /// User PIN of the token (prefer the environment variable to the command line).
    #[arg(long, env = "SIGN_ACTION_PKCS11_PIN", hide_env_values = true)]
    pub pkcs11_pin: Option<String>,
    /// Sign with an installed notation plugin (SIGNATURE_GENERATOR.RAW), found at
    /// `{notation config}/plugins/NAME/notation-NAME` unless --plugin-path is given.
    #[arg(long, value_name = "NAME", requires = "plugin_key_id")]
    pub plugin: Option<String>,
    /// The key id passed to the plugin.
    #[arg(long, alias = "id", value_name = "KEY_ID", requires = "plugin")]
    pub plugin_key_id: Option<String>,
    /// Plugin configuration KEY=VALUE (repeatable), passed as `pluginConfig`.
    #[arg(long, value_name = "KEY=VALUE", requires = "plugin")]
    pub plugin_config: Vec<String>,
    /// The plugin executable, instead of notation's plugin directory.
    #[arg(long, value_name = "PATH", requires = "plugin")]
    pub plugin_path: Option<PathBuf>,
    /// Sign keylessly: an ephemeral key certified for minutes by a Fulcio CA for the identity
    /// of an OIDC token (GitHub Actions' token, or --oidc-token-file). Requires --timestamp-url.
    #[arg(long)]
    pub keyless: bool,
    /// Fulcio-compatible CA that issues the keyless certificate [default: https://fulcio.sigstore.dev].
    #[arg(long, value_name = "URL", requires = "keyless")]
    pub fulcio_url: Option<String>,
    /// Audience of the GitHub Actions OIDC token [default: sigstore for --keyless,
    /// api://AzureADTokenExchange for --kms azure, sts.amazonaws.com for --kms aws].
    #[arg(long, value_name = "AUDIENCE", conflicts_with = "oidc_token_file")]
    pub oidc_audience: Option<String>,
    /// Read the OIDC token (a JWT) from this file instead of asking GitHub Actions for one
    /// (other CI systems).
    #[arg(long, value_name = "FILE")]
    pub oidc_token_file: Option<PathBuf>,
    /// Read the OIDC token from this environment variable instead (GitLab `id_tokens`,
    /// Buildkite, …); the variable's name, not the token, goes on the command line.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["oidc_token_file", "oidc_audience"])]
    pub oidc_token_env: Option<String>,
    /// Sign with a cloud KMS key reached through OIDC federation (GitHub's OIDC token, or
    /// --oidc-token-file): `azure` (Key Vault) or `aws` (KMS). The key never leaves the service.
    #[arg(long, value_enum, value_name = "PROVIDER", requires = "kms_key")]
    pub kms: Option<KmsProvider>,
    /// The KMS key: an Azure Key Vault key identifier
    /// (`https://VAULT.vault.azure.net/keys/NAME[/VERSION]`) or an AWS KMS key id, key ARN or
    /// alias (`alias/NAME`).
    #[arg(long, value_name = "KEY", requires = "kms")]
    pub kms_key: Option<String>,
    /// Microsoft Entra tenant of the app that has the federated credential (--kms azure).
    #[arg(long, env = "AZURE_TENANT_ID", value_name = "ID")]
    pub azure_tenant_id: Option<String>,
    /// Application (client) id of that app or managed identity (--kms azure).
    #[arg(long, env = "AZURE_CLIENT_ID", value_name = "ID")]
    pub azure_client_id: Option<String>,
    /// Entra ID authority (default https://login.microsoftonline.com; sovereign clouds differ).
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL")]
    pub azure_authority_host: Option<String>,
    /// IAM role to assume with the OIDC token (--kms aws).
    #[arg(long, env = "AWS_ROLE_ARN", value_name = "ARN")]
    pub aws_role_arn: Option<String>,
    /// Region of the KMS key (default: the region of a key ARN).
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub aws_region: Option<String>,
    /// STS endpoint (default https://sts.REGION.amazonaws.com).
    #[arg(long, env = "AWS_ENDPOINT_URL_STS", value_name = "URL")]
    pub aws_sts_endpoint: Option<String>,
    /// KMS endpoint (default https://kms.REGION.amazonaws.com).
    #[arg(long, env = "AWS_ENDPOINT_URL_KMS", value_name = "URL")]
    pub aws_kms_endpoint: Option<String>,
    /// Envelope format.
    #[arg(long, value_enum, default_value_t = SignatureFormatArg::Jws)]
    pub signature_format: SignatureFormatArg,
    /// Signature lifetime, e.g. 30d, 12h (no expiry when absent).
    #[arg(long, short = 'e')]
    pub expiry: Option<String>,
    /// Payload annotation KEY=VALUE (repeatable).
    #[arg(long = "user-metadata", short = 'm', value_name = "KEY=VALUE")]
    pub user_metadata: Vec<String>,
    /// Signature manifest form.
    #[arg(long, value_enum, default_value_t = ManifestFormArg::Legacy)]
    pub manifest_form: ManifestFormArg,
    /// RFC 3161 timestamp authority URL: countersign every signature (needs --timestamp-root-cert).
    #[arg(long, requires = "timestamp_root_cert")]
    pub timestamp_url: Option<String>,
    /// PEM root certificate(s) the TSA's chain must lead to.
    #[arg(long, requires = "timestamp_url", value_name = "FILE")]
    pub timestamp_root_cert: Option<PathBuf>,
    /// How many artifacts to sign at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Do not check the signing chain's revocation status before signing (by default a
    /// revoked certificate is refused and an unknown status is a warning). For offline
    /// signing and for producing test signatures with revoked certificates.
    #[arg(long)]
    pub no_revocation_check: bool,
    /// For an image index, also sign every manifest it lists (one signature each).
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Result format on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Artifacts to verify.
    #[arg(required = true, value_name = "REFERENCE")]
    pub references: Vec<String>,
    /// Trust policy file (default: notation's trustpolicy.oci.json, then trustpolicy.json).
    #[arg(long)]
    pub trust_policy: Option<PathBuf>,
    /// notation configuration directory holding `truststore/` (default: $XDG_CONFIG_HOME/notation).
    #[arg(long)]
    pub trust_store: Option<PathBuf>,
    /// Policy scope to use for OCI layouts (e.g. `registry.example/app`).
    #[arg(long)]
    pub scope: Option<String>,
    /// Required payload annotation KEY=VALUE (repeatable).
    #[arg(long = "user-metadata", short = 'm', value_name = "KEY=VALUE")]
    pub user_metadata: Vec<String>,
    /// Give up after this many signatures per artifact.
    #[arg(long, default_value_t = 100)]
    pub max_signatures: usize,
    /// Configuration KEY=VALUE (repeatable) for the verification plugin a signature names,
    /// passed as `pluginConfig`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub plugin_config: Vec<String>,
    /// Keep CRLs and OCSP answers in this directory between runs (until their nextUpdate).
    #[arg(long, value_name = "DIR")]
    pub revocation_cache: Option<PathBuf>,
    /// Accept keyless (Fulcio) signatures under a trust policy whose trusted identity is "*".
    /// Without it they are refused: "*" over a keyless CA trusts anyone who can get a token.
    #[arg(long)]
    pub allow_any_keyless_identity: bool,
    /// For an image index, also require every manifest it lists to verify (reported per
    /// platform).
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The artifact.
    pub reference: String,
    /// Give up after this many signatures.
    #[arg(long, default_value_t = 100)]
    pub max_signatures: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Which verdicts fail `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FailOnArg {
    /// Unsigned images only.
    Unsigned,
    /// Unsigned images and images whose signatures are not trusted.
    Untrusted,
    /// Anything not signed and trusted, including images that could not be checked.
    #[default]
    Any,
    /// Never fail; report only.
    None,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Files, directories or globs (`k8s/**/*.yaml`) relative to --root. Default: every
    /// Dockerfile and YAML file under --root.
    #[arg(value_name = "FILE|DIR|GLOB")]
    pub patterns: Vec<String>,
    /// The repository root; reported paths are relative to it.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Trust policy file (default: notation's trustpolicy.oci.json, then trustpolicy.json).
    #[arg(long)]
    pub trust_policy: Option<PathBuf>,
    /// notation configuration directory holding `truststore/` (default: $XDG_CONFIG_HOME/notation).
    #[arg(long)]
    pub trust_store: Option<PathBuf>,
    /// Which results make the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOnArg::Any)]
    pub fail_on: FailOnArg,
    /// Give up after this many signatures per image.
    #[arg(long, default_value_t = 100)]
    pub max_signatures: usize,
    /// Images checked at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// The registry host[:port] that --username/--password are for. Required with them: the
    /// references come from the scanned files, so credentials go to no other registry.
    #[arg(long, value_name = "HOST")]
    pub registry_host: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}
