//! The action entry points: inputs → the same requests the CLI builds → library → outputs,
//! step summary and annotations. No signing logic lives here.

use std::io::Write;

use anyhow::{Context, Result};

use super::spec::{DeclaredInputs, SIGN_INPUTS, VERIFY_INPUTS};
use super::{pem_or_path, Action, AnnotationProps, Commands, Mode, Outputs};
use crate::cli::{ManifestFormArg, SignatureFormatArg};
use std::path::{Path, PathBuf};

use sign_action::policy::TrustPolicyDocument;
use sign_action::verify::VerifySettings;

use crate::run::{
    execute_sign, execute_verify, load_policy, one_line, open_trust_store, parse_plugin_config,
    settings_from, verify_settings, KeySource, KeylessSource, KmsKey, KmsSettings, OidcChoice,
    SignRequest, StoreConfig, VerifyRequest, EXIT_FAILED, EXIT_OK, EXIT_USAGE,
};

/// Inputs whose values are secrets: masked before anything else is printed.
const SECRET_INPUTS: &[&str] = &[
    "key",
    "key-password",
    "pkcs11-pin",
    "registry-password",
    "github-token",
];

/// Run the signing action with the process environment.
pub async fn sign_action() -> i32 {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let commands = Commands::standard(Mode::Action);
    let outputs = Outputs::from_env(env.iter().cloned());
    let mut action = Action::new(commands, outputs);
    sign_action_with(&env, &mut action).await
}

pub async fn sign_action_with<W: Write>(env: &[(String, String)], action: &mut Action<W>) -> i32 {
    let inputs = DeclaredInputs::from_env(env.iter().cloned(), SIGN_INPUTS);
    // Masks go out before any other line, so nothing printed later can leak a secret.
    for name in SECRET_INPUTS {
        if let Some(value) = inputs.get(name) {
            let _ = action.commands.register_secret(value);
        }
    }
    if let Some(code) = install_plugin_input(&inputs, action).await {
        return code;
    }
    let mut request = match sign_request_from_inputs(&inputs, env, &mut action.commands) {
        Ok(r) => r,
        Err(e) => {
            let message = action.commands.redact(&one_line(&e));
            let _ = action.commands.error(&message, &AnnotationProps::default());
            return EXIT_USAGE;
        }
    };
    // The OIDC token (keyless signing, KMS federation) is obtained here, and masked, before
    // anything else can print it.
    if let Some(source) = request.key.pending_oidc_token() {
        let purpose = request.key.oidc_purpose();
        match obtain_masked_token(&source, &mut action.commands).await {
            Ok(token) => request.key.set_oidc_token(token),
            Err(e) => {
                let e = e.context(format!("cannot obtain the OIDC token for {purpose}"));
                let message = action.commands.redact(&one_line(&e));
                let _ = action.commands.error(&message, &AnnotationProps::default());
                return EXIT_USAGE;
            }
        }
    }
    let count = request.references.len();
    let _ = action.commands.group(&format!(
        "Signing {count} artifact{}",
        if count == 1 { "" } else { "s" }
    ));
    let mut warnings = Vec::new();
    let collected = std::sync::Mutex::new(&mut warnings);
    let outcome = execute_sign(request, &|w: &str| {
        collected
            .lock()
            .expect("no panics while holding")
            .push(w.to_string())
    })
    .await;
    for w in &warnings {
        let message = action.commands.redact(w);
        let _ = action
            .commands
            .warning(&message, &AnnotationProps::default());
    }
    let mut report = match outcome {
        Ok(report) => report,
        Err(e) => {
            let _ = action.commands.end_group();
            let message = action.commands.redact(&one_line(&e));
            let _ = action.commands.error(&message, &AnnotationProps::default());
            return EXIT_USAGE;
        }
    };
    for failure in &mut report.failures {
        failure.error = action.commands.redact(&failure.error);
    }
    for s in &report.signatures {
        let _ = action.commands.info(&format!(
            "signed {} ({}) -> {} [{}, {}]",
            s.reference,
            s.digest,
            s.signature_digest,
            s.signature_format,
            s.storage.as_str()
        ));
        if let Some(id) = &s.keyless_identity {
            let _ = action.commands.info(&format!(
                "  keyless identity: {}",
                crate::run::keyless_line(id)
            ));
        }
    }
    let _ = action.commands.end_group();
    for f in &report.failures {
        let _ = action.commands.error(
            &format!("{}: {}", f.reference, f.error),
            &AnnotationProps::default(),
        );
    }

    let signatures = serde_json::to_string(&report.signatures).expect("reports serialise");
    let mut code = if report.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    };
    if let Err(e) = action.set_output("signatures", &signatures) {
        let _ = action.commands.error(
            &format!("cannot write outputs: {e}"),
            &AnnotationProps::default(),
        );
        code = EXIT_FAILED;
    }
    if report.signatures.len() == 1 && report.failures.is_empty() {
        if let Err(e) =
            action.set_output("signature-digest", &report.signatures[0].signature_digest)
        {
            let _ = action.commands.error(
                &format!("cannot write outputs: {e}"),
                &AnnotationProps::default(),
            );
            code = EXIT_FAILED;
        }
    }
    if let Err(e) = action.append_summary(&super::render_sign_summary(&report)) {
        let _ = action.commands.warning(
            &format!("cannot write the step summary: {e}"),
            &AnnotationProps::default(),
        );
    }
    code
}

pub(super) fn sign_request_from_inputs<W: Write>(
    inputs: &DeclaredInputs,
    env: &[(String, String)],
    commands: &mut Commands<W>,
) -> Result<SignRequest> {
    let references = inputs.get_multiline("images");
    if references.is_empty() {
        anyhow::bail!("input `images` is required: one artifact reference per line");
    }
    plugin_download(inputs)?;
    let keyless = inputs.get_bool("keyless")?.unwrap_or_default();
    // Read whether or not keyless is on, so every run sees the same declared inputs.
    let fulcio_url = inputs.get("fulcio-url");
    let oidc_audience = inputs.get("oidc-audience");
    let oidc_token_file = inputs.get("oidc-token-file");
    if keyless {
        if inputs.get("key").is_some()
            || inputs.get("pkcs11-module").is_some()
            || inputs.get("plugin").is_some()
        {
            anyhow::bail!(
                "input `keyless` cannot be combined with `key`, `pkcs11-module` or `plugin`: give one key source"
            );
        }
        if inputs.get("certificate-chain").is_some() {
            anyhow::bail!(
                "input `certificate-chain` cannot be given with `keyless`: the Fulcio CA issues the chain"
            );
        }
        if oidc_audience.is_some() && oidc_token_file.is_some() {
            anyhow::bail!(
                "inputs `oidc-audience` and `oidc-token-file` are exclusive: a token file already has its audience"
            );
        }
    }
    let kms = kms_key_source(inputs, env, oidc_audience, oidc_token_file)?;
    if keyless && kms.is_some() {
        anyhow::bail!("inputs `keyless` and `kms` are exclusive: give one key source");
    }
    let key = match (inputs.get("key"), inputs.get("pkcs11-module")) {
        _ if kms.is_some() => {
            if inputs.get("key").is_some()
                || inputs.get("pkcs11-module").is_some()
                || inputs.get("plugin").is_some()
            {
                anyhow::bail!(
                    "input `kms` cannot be combined with `key`, `pkcs11-module` or `plugin`: give one key source"
                );
            }
            kms.expect("checked")
        }
        (None, None) if keyless => KeySource::Keyless(KeylessSource::new(
            fulcio_url,
            &OidcChoice {
                token_file: oidc_token_file.map(PathBuf::from),
                token_env: None,
                audience: oidc_audience.map(String::from),
            },
        )),
        (None, None) if inputs.get("plugin").is_some() => KeySource::Plugin {
            name: inputs.get("plugin").unwrap_or_default().to_string(),
            path: None,
            key_id: inputs
                .get("plugin-key-id")
                .context("input `plugin-key-id` is required with `plugin`")?
                .to_string(),
            config: parse_plugin_config(&inputs.get_multiline("plugin-config"))
                .context("input `plugin-config`")?,
        },
        (Some(_), _) | (_, Some(_)) if inputs.get("plugin").is_some() => {
            anyhow::bail!("input `plugin` cannot be combined with `key` or `pkcs11-module`")
        }
        (Some(key), None) => {
            let key_pem = pem_or_path(key).context("input `key`")?;
            // The key may have come from a file: mask its content too.
            if let Ok(text) = std::str::from_utf8(&key_pem) {
                let _ = commands.register_secret(text);
            }
            KeySource::Local {
                key_pem,
                password: inputs.get("key-password").map(String::from),
            }
        }
        (None, Some(module)) => KeySource::Pkcs11 {
            module: module.into(),
            token: inputs.get("pkcs11-token").map(String::from),
            key: inputs
                .get("pkcs11-key")
                .context("input `pkcs11-key` is required with `pkcs11-module`")?
                .to_string(),
            pin: inputs
                .get("pkcs11-pin")
                .map(|p| zeroize::Zeroizing::new(p.to_string())),
        },
        (Some(_), Some(_)) => {
            anyhow::bail!("inputs `key` and `pkcs11-module` are exclusive: give one key source")
        }
        (None, None) => anyhow::bail!(
            "a signing key is required: input `key` (PEM or file), `pkcs11-module` with `pkcs11-key`, `plugin` with `plugin-key-id`, or `keyless: true`"
        ),
    };
    let chain_pem = match inputs.get("certificate-chain") {
        Some(v) => Some(pem_or_path(v).context("input `certificate-chain`")?),
        None if matches!(key, KeySource::Local { .. }) => {
            anyhow::bail!("input `certificate-chain` is required with input `key`")
        }
        None if matches!(
            key,
            KeySource::Kms { ref key, .. } if matches!(**key, KmsKey::Aws(_))
        ) =>
        {
            anyhow::bail!(
                "input `certificate-chain` is required with `kms: aws`: AWS KMS stores no certificates"
            )
        }
        None => None,
    };
    let format = match inputs.require("signature-format")? {
        "jws" => SignatureFormatArg::Jws,
        "cose" => SignatureFormatArg::Cose,
        other => anyhow::bail!("input `signature-format` must be jws or cose, not {other:?}"),
    };
    let form = match inputs.require("manifest-form")? {
        "legacy" => ManifestFormArg::Legacy,
        "artifact-type" => ManifestFormArg::ArtifactType,
        other => {
            anyhow::bail!("input `manifest-form` must be legacy or artifact-type, not {other:?}")
        }
    };
    let mut settings = settings_from(
        format,
        inputs.get("expiry"),
        &inputs.get_multiline("user-metadata"),
        form,
        4,
    )?;
    settings.recursive = inputs.get_bool("recursive")?.unwrap_or_default();
    let oci_layout = inputs.get_bool("oci-layout")?.unwrap_or_default();
    let store = store_from_inputs(inputs, env, oci_layout)?;
    if let Some(t) = &store.github_token {
        let _ = commands.register_secret(t);
    }
    let timestamp = match (
        inputs.get("timestamp-url"),
        inputs.get("timestamp-root-cert"),
    ) {
        (Some(url), Some(root)) => Some((
            url.to_string(),
            pem_or_path(root).context("input `timestamp-root-cert`")?,
        )),
        (None, None) => None,
        _ => {
            anyhow::bail!("inputs `timestamp-url` and `timestamp-root-cert` must be given together")
        }
    };
    if keyless {
        crate::run::require_keyless_timestamp(timestamp.is_some(), "input `keyless`")?;
    }
    Ok(SignRequest {
        check_revocation: true,
        timestamp,
        references,
        key,
        chain_pem,
        settings,
        store,
    })
}

/// Inputs of the verification action whose values are secrets.
const VERIFY_SECRET_INPUTS: &[&str] = &["registry-password", "github-token"];

/// Run the verification action with the process environment.
pub async fn verify_action() -> i32 {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let commands = Commands::standard(Mode::Action);
    let outputs = Outputs::from_env(env.iter().cloned());
    let mut action = Action::new(commands, outputs);
    verify_action_with(&env, &mut action).await
}

pub async fn verify_action_with<W: Write>(env: &[(String, String)], action: &mut Action<W>) -> i32 {
    let inputs = DeclaredInputs::from_env(env.iter().cloned(), VERIFY_INPUTS);
    for name in VERIFY_SECRET_INPUTS {
        if let Some(value) = inputs.get(name) {
            let _ = action.commands.register_secret(value);
        }
    }
    if let Some(t) = env_value(env, "GITHUB_TOKEN") {
        let _ = action.commands.register_secret(t);
    }
    if let Some(code) = install_plugin_input(&inputs, action).await {
        return code;
    }
    let request = match verify_request_from_inputs(&inputs, env) {
        Ok(r) => r,
        Err(e) => {
            let message = action.commands.redact(&one_line(&e));
            let _ = action.commands.error(&message, &AnnotationProps::default());
            return EXIT_USAGE;
        }
    };
    let count = request.references.len();
    let _ = action.commands.group(&format!(
        "Verifying {count} artifact{}",
        if count == 1 { "" } else { "s" }
    ));
    let results = match execute_verify(request).await {
        Ok(r) => r,
        Err(e) => {
            let _ = action.commands.end_group();
            let message = action.commands.redact(&one_line(&e));
            let _ = action.commands.error(&message, &AnnotationProps::default());
            return EXIT_USAGE;
        }
    };
    let mut results = results;
    for r in &mut results {
        if let Some(e) = &r.error {
            r.error = Some(action.commands.redact(e));
        }
    }
    for r in &results {
        if r.verified {
            let _ = action.commands.info(&format!(
                "verified {} ({})",
                r.reference,
                r.digest.as_deref().unwrap_or("?")
            ));
        }
        for w in &r.warnings {
            let message = action.commands.redact(&format!("{}: {w}", r.reference));
            let _ = action
                .commands
                .warning(&message, &AnnotationProps::default());
        }
    }
    let _ = action.commands.end_group();
    for r in results.iter().filter(|r| !r.verified) {
        let _ = action.commands.error(
            &format!(
                "{}: {}",
                r.reference,
                r.error.as_deref().unwrap_or("verification failed")
            ),
            &AnnotationProps::default(),
        );
    }
    let verified = results.iter().all(|r| r.verified);
    let mut code = if verified { EXIT_OK } else { EXIT_FAILED };
    let json = serde_json::to_string(&results).expect("results serialise");
    for (name, value) in [
        ("verified", if verified { "true" } else { "false" }),
        ("results", json.as_str()),
    ] {
        if let Err(e) = action.set_output(name, value) {
            let _ = action.commands.error(
                &format!("cannot write outputs: {e}"),
                &AnnotationProps::default(),
            );
            code = EXIT_FAILED;
        }
    }
    if let Err(e) = action.append_summary(&super::summary::render_verify_summary(&results)) {
        let _ = action.commands.warning(
            &format!("cannot write the step summary: {e}"),
            &AnnotationProps::default(),
        );
    }
    code
}

/// The `github-token` input, else `GITHUB_TOKEN` from the step's environment (used for
/// ghcr.io only).
/// Inputs `plugin-url` + `plugin-checksum`, which only make sense together.
pub(crate) fn plugin_download(inputs: &DeclaredInputs) -> Result<Option<(String, String)>> {
    match (inputs.get("plugin-url"), inputs.get("plugin-checksum")) {
        (None, None) => Ok(None),
        (Some(u), Some(c)) => Ok(Some((u.to_string(), c.to_string()))),
        _ => anyhow::bail!(
            "inputs `plugin-url` and `plugin-checksum` must be given together (the archive's SHA-256 pins what is installed)"
        ),
    }
}

/// Inputs `plugin-url` + `plugin-checksum`: install the plugin archive into notation's
/// plugin directory before anything looks for it. `Some(exit code)` when that failed.
async fn install_plugin_input<W: Write>(
    inputs: &DeclaredInputs,
    action: &mut Action<W>,
) -> Option<i32> {
    let report = |action: &mut Action<W>, e: &anyhow::Error| {
        let message = action.commands.redact(&one_line(e));
        let _ = action.commands.error(&message, &AnnotationProps::default());
    };
    let (url, checksum) = match plugin_download(inputs) {
        Ok(None) => return None,
        Ok(Some(pair)) => pair,
        Err(e) => {
            report(action, &e);
            return Some(EXIT_USAGE);
        }
    };
    let Some(config) = sign_action::policy::store::default_config_dir() else {
        report(
            action,
            &anyhow::anyhow!(
                "cannot find notation's configuration directory to install the plugin into"
            ),
        );
        return Some(EXIT_USAGE);
    };
    match sign_action::signers::install::install_from_url(&url, &checksum, &config.join("plugins"))
        .await
    {
        Ok(path) => {
            let _ = action
                .commands
                .info(&format!("installed plugin {}", path.display()));
            None
        }
        Err(e) => {
            report(action, &anyhow::Error::new(e).context("input `plugin-url`"));
            Some(EXIT_FAILED)
        }
    }
}

pub(super) fn github_token(inputs: &DeclaredInputs, env: &[(String, String)]) -> Option<String> {
    inputs
        .get("github-token")
        .map(String::from)
        .or_else(|| env_value(env, "GITHUB_TOKEN").map(String::from))
}

/// The registry inputs every action shares (credentials, token, CA, insecure hosts) and the
/// docker configuration the runner mounted.
pub(super) fn store_from_inputs(
    inputs: &DeclaredInputs,
    env: &[(String, String)],
    oci_layout: bool,
) -> Result<StoreConfig> {
    let registry_ca_pem = match inputs.get("registry-ca") {
        Some(v) => vec![pem_or_path(v).context("input `registry-ca`")?],
        None => Vec::new(),
    };
    Ok(StoreConfig {
        oci_layout,
        username: inputs.get("registry-username").map(String::from),
        password: inputs.get("registry-password").map(String::from),
        github_token: github_token(inputs, env),
        insecure_registries: inputs.get_multiline("insecure-registries"),
        registry_ca_pem,
        docker_config_dir: docker_config_dir(env),
    })
}

/// The trust policy (a path or inline JSON), the trust store and the signature limit, as the
/// verify and check actions read them.
pub(super) fn trust_inputs(
    inputs: &DeclaredInputs,
) -> Result<(TrustPolicyDocument, sign_action::policy::TrustStore, usize)> {
    let policy = match inputs.get("trust-policy") {
        Some(v) if v.trim_start().starts_with('{') => {
            TrustPolicyDocument::parse_str(v).context("input `trust-policy` (inline JSON)")?
        }
        Some(path) => load_policy(Some(Path::new(path)))?,
        None => load_policy(None)?,
    };
    let trust_store = open_trust_store(inputs.get("trust-store").map(Path::new))?;
    let max_signatures = inputs
        .require("max-signatures")?
        .parse()
        .map_err(|_| anyhow::anyhow!("input `max-signatures` must be a whole number"))?;
    Ok((policy, trust_store, max_signatures))
}

/// The KMS key source from the `kms` inputs; endpoint overrides and the region fallback come
/// from the environment variables AWS and Azure document (`AWS_ENDPOINT_URL_STS`,
/// `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, `AWS_REGION`, `AZURE_AUTHORITY_HOST`).
fn kms_key_source(
    inputs: &DeclaredInputs,
    env: &[(String, String)],
    oidc_audience: Option<&str>,
    oidc_token_file: Option<&str>,
) -> Result<Option<KeySource>> {
    let Some(provider) = inputs.get("kms") else {
        return Ok(None);
    };
    let provider = match provider {
        "azure" => crate::cli::KmsProvider::Azure,
        "aws" => crate::cli::KmsProvider::Aws,
        other => anyhow::bail!("input `kms` must be azure or aws, not {other:?}"),
    };
    let owned = |name: &str| env_value(env, name).map(String::from);
    let settings = KmsSettings {
        provider,
        key: inputs
            .get("kms-key")
            .context("input `kms-key` is required with `kms`")?
            .to_string(),
        azure_tenant_id: inputs.get("azure-tenant-id").map(String::from),
        azure_client_id: inputs.get("azure-client-id").map(String::from),
        azure_authority_host: owned("AZURE_AUTHORITY_HOST"),
        aws_role_arn: inputs.get("aws-role-arn").map(String::from),
        aws_region: inputs
            .get("aws-region")
            .map(String::from)
            .or_else(|| owned("AWS_REGION")),
        aws_sts_endpoint: owned("AWS_ENDPOINT_URL_STS").or_else(|| owned("AWS_ENDPOINT_URL")),
        aws_kms_endpoint: owned("AWS_ENDPOINT_URL_KMS").or_else(|| owned("AWS_ENDPOINT_URL")),
        oidc: OidcChoice {
            token_file: oidc_token_file.map(PathBuf::from),
            token_env: None,
            audience: oidc_audience.map(String::from),
        },
    };
    if settings.oidc.token_file.is_some() && settings.oidc.audience.is_some() {
        anyhow::bail!(
            "inputs `oidc-audience` and `oidc-token-file` are exclusive: a token file already has its audience"
        );
    }
    settings
        .into_key_source(&|name| format!("input `{name}`"))
        .map(Some)
}

/// A variable of the step's environment; set-but-empty counts as unset, as the runner passes
/// unset expressions as empty strings.
pub(super) fn env_value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Where the docker `config.json` written by `docker/login-action` is, seen from inside the
/// action's container. `DOCKER_CONFIG` is passed into container actions verbatim, but the
/// runner mounts only some host directories: `$RUNNER_TEMP/_github_home` becomes `$HOME`
/// (`/github/home`). So a `DOCKER_CONFIG` under it that does not exist here is translated;
/// one that exists is used as is; otherwise `None` (the usual `$DOCKER_CONFIG`/`~/.docker`).
pub fn docker_config_dir(env: &[(String, String)]) -> Option<PathBuf> {
    let configured = PathBuf::from(env_value(env, "DOCKER_CONFIG")?);
    if configured.join("config.json").is_file() {
        return Some(configured);
    }
    let runner_home = Path::new(env_value(env, "RUNNER_TEMP")?).join("_github_home");
    let rest = configured.strip_prefix(&runner_home).ok()?;
    let home = env_value(env, "HOME")?;
    let translated = Path::new(home).join(rest);
    translated
        .join("config.json")
        .is_file()
        .then_some(translated)
}

pub(super) fn verify_request_from_inputs(
    inputs: &DeclaredInputs,
    env: &[(String, String)],
) -> Result<VerifyRequest> {
    let references = inputs.get_multiline("images");
    if references.is_empty() {
        anyhow::bail!("input `images` is required: one artifact reference per line");
    }
    let (policy, trust_store, max_signatures) = trust_inputs(inputs)?;
    plugin_download(inputs)?;
    let settings = VerifySettings {
        plugin_config: parse_plugin_config(&inputs.get_multiline("plugin-config"))
            .context("input `plugin-config`")?,
        allow_any_keyless_identity: inputs
            .get_bool("allow-any-keyless-identity")?
            .unwrap_or_default(),
        ..verify_settings(max_signatures, &inputs.get_multiline("user-metadata"), None)?
    };
    let oci_layout = inputs.get_bool("oci-layout")?.unwrap_or_default();
    Ok(VerifyRequest {
        references,
        policy,
        trust_store,
        scope: inputs.get("scope").map(String::from),
        settings,
        store: store_from_inputs(inputs, env, oci_layout)?,
        recursive: inputs.get_bool("recursive")?.unwrap_or_default(),
    })
}

/// Obtain an OIDC token and mask it before anything else can print it. Every keyless or
/// KMS-federation path in action mode goes through here rather than `oidc::obtain` directly.
pub async fn obtain_masked_token<W: Write>(
    source: &sign_action::oidc::TokenSource,
    commands: &mut Commands<W>,
) -> Result<sign_action::oidc::IdToken> {
    let token = sign_action::oidc::obtain(source).await?;
    commands
        .register_secret(token.expose_secret())
        .context("cannot write the ::add-mask:: command for the OIDC token")?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &Path)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.display().to_string()))
            .collect()
    }

    #[test]
    fn docker_config_is_found_where_the_container_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("github-home");
        let direct = dir.path().join("direct");
        std::fs::create_dir_all(&direct).unwrap();
        std::fs::write(direct.join("config.json"), "{}").unwrap();
        assert_eq!(
            docker_config_dir(&env(&[("DOCKER_CONFIG", &direct), ("HOME", &home)])),
            Some(direct.clone())
        );
        let runner_temp = Path::new("/home/runner/work/_temp");
        let host_path = runner_temp.join("_github_home/.docker");
        let vars = env(&[
            ("DOCKER_CONFIG", &host_path),
            ("RUNNER_TEMP", runner_temp),
            ("HOME", &home),
        ]);
        assert_eq!(docker_config_dir(&vars), None, "nothing there yet");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::write(home.join(".docker/config.json"), "{}").unwrap();
        assert_eq!(docker_config_dir(&vars), Some(home.join(".docker")));
        // Elsewhere on the host: not reachable, left to the default lookup.
        let other = Path::new("/opt/elsewhere/.docker");
        assert_eq!(
            docker_config_dir(&env(&[
                ("DOCKER_CONFIG", other),
                ("RUNNER_TEMP", runner_temp),
                ("HOME", &home)
            ])),
            None
        );
        assert_eq!(docker_config_dir(&env(&[("HOME", &home)])), None);
    }
}
