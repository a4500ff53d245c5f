//! The inputs and outputs each action declares, as the code sees them.
//!
//! `action.yml` and `verify/action.yml` are what the runner reads; these tables are what the
//! binary reads. The request builders only reach inputs through [`DeclaredInputs`], which takes
//! defaults from the table and refuses a name the table does not list, and the tests below prove
//! the tables, the YAML files and the README's input tables say the same thing. So an input
//! cannot be added, renamed or given a new default in one place only.

use super::{read_inputs, InputError, Inputs};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// The default an input has when the workflow leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputDefault {
    None,
    /// A literal the binary applies itself, so the value is the same outside a runner.
    Value(&'static str),
    /// An expression the runner evaluates (`${{ github.token }}`); the binary cannot.
    Expression(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    pub name: &'static str,
    pub required: bool,
    pub default: InputDefault,
}

const fn input(name: &'static str) -> InputSpec {
    InputSpec {
        name,
        required: false,
        default: InputDefault::None,
    }
}

const fn required(name: &'static str) -> InputSpec {
    InputSpec {
        name,
        required: true,
        default: InputDefault::None,
    }
}

const fn with_default(name: &'static str, value: &'static str) -> InputSpec {
    InputSpec {
        name,
        required: false,
        default: InputDefault::Value(value),
    }
}

const GITHUB_TOKEN: InputSpec = InputSpec {
    name: "github-token",
    required: false,
    default: InputDefault::Expression("${{ github.token }}"),
};

/// `action.yml` (`action sign`).
pub const SIGN_INPUTS: &[InputSpec] = &[
    required("images"),
    input("key"),
    input("key-password"),
    input("certificate-chain"),
    input("pkcs11-module"),
    input("pkcs11-token"),
    input("pkcs11-key"),
    input("pkcs11-pin"),
    input("plugin"),
    input("plugin-key-id"),
    input("plugin-url"),
    input("plugin-checksum"),
    input("plugin-config"),
    input("kms"),
    input("kms-key"),
    input("azure-tenant-id"),
    input("azure-client-id"),
    input("aws-role-arn"),
    input("aws-region"),
    with_default("keyless", "false"),
    with_default("fulcio-url", "https://fulcio.sigstore.dev"),
    input("oidc-audience"),
    input("oidc-token-file"),
    with_default("signature-format", "jws"),
    input("expiry"),
    input("user-metadata"),
    with_default("manifest-form", "legacy"),
    with_default("recursive", "false"),
    input("timestamp-url"),
    input("timestamp-root-cert"),
    input("registry-username"),
    input("registry-password"),
    GITHUB_TOKEN,
    input("insecure-registries"),
    input("registry-ca"),
    with_default("oci-layout", "false"),
];

pub const SIGN_OUTPUTS: &[&str] = &["signatures", "signature-digest"];

/// `verify/action.yml` (`action verify`).
pub const VERIFY_INPUTS: &[InputSpec] = &[
    required("images"),
    input("trust-policy"),
    input("trust-store"),
    input("user-metadata"),
    input("plugin-url"),
    input("plugin-checksum"),
    input("plugin-config"),
    with_default("max-signatures", "100"),
    with_default("recursive", "false"),
    with_default("allow-any-keyless-identity", "false"),
    input("scope"),
    with_default("oci-layout", "false"),
    input("registry-username"),
    input("registry-password"),
    GITHUB_TOKEN,
    input("insecure-registries"),
    input("registry-ca"),
];

pub const VERIFY_OUTPUTS: &[&str] = &["verified", "results"];

/// `check/action.yml` (`action check`).
pub const CHECK_INPUTS: &[InputSpec] = &[
    input("files"),
    with_default("fail-on", "any"),
    input("trust-policy"),
    input("trust-store"),
    with_default("max-signatures", "100"),
    with_default("check-run", "true"),
    input("registry-host"),
    input("registry-username"),
    input("registry-password"),
    GITHUB_TOKEN,
    input("insecure-registries"),
    input("registry-ca"),
];

pub const CHECK_OUTPUTS: &[&str] = &["checked", "failed", "results"];

/// The runner's inputs seen through one action's declaration: literal defaults filled in, and
/// every name read recorded (the drift test compares that record with the table).
pub struct DeclaredInputs {
    inputs: Inputs,
    spec: &'static [InputSpec],
    read: RefCell<BTreeSet<&'static str>>,
}

impl DeclaredInputs {
    /// Collect `INPUT_*` variables from `env` and apply the table's literal defaults, so the
    /// binary behaves the same whether the runner or a plain `docker run` started it.
    pub fn from_env(
        env: impl Iterator<Item = (String, String)>,
        spec: &'static [InputSpec],
    ) -> Self {
        let given = read_inputs(env);
        let mut vars: Vec<(String, String)> = Vec::new();
        for s in spec {
            let key = format!("INPUT_{}", s.name.replace(' ', "_").to_uppercase());
            match (given.get(s.name), s.default) {
                (Some(v), _) => vars.push((key, v.to_string())),
                (None, InputDefault::Value(d)) => vars.push((key, d.to_string())),
                (None, _) => {}
            }
        }
        DeclaredInputs {
            inputs: read_inputs(vars.into_iter()),
            spec,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// The declared name for `name`; reading an undeclared input is a programming error that
    /// the runner would silently answer with nothing, so it stops here instead.
    fn declared(&self, name: &str) -> &'static str {
        let spec = self
            .spec
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                panic!("input `{name}` is read but not declared in this action's input table")
            });
        self.read.borrow_mut().insert(spec.name);
        spec.name
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.inputs.get(self.declared(name))
    }

    pub fn require(&self, name: &str) -> Result<&str, InputError> {
        self.inputs.require(self.declared(name))
    }

    pub fn get_bool(&self, name: &str) -> Result<Option<bool>, InputError> {
        self.inputs.get_bool(self.declared(name))
    }

    pub fn get_multiline(&self, name: &str) -> Vec<String> {
        self.inputs.get_multiline(self.declared(name))
    }

    /// Names read so far.
    #[cfg(test)]
    pub fn read_names(&self) -> BTreeSet<&'static str> {
        self.read.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    fn repo_file(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    /// The YAML files parsed by PyYAML (an independent parser; the test suite already needs
    /// Python). Fails, rather than skips, when it is missing.
    fn load_yaml(rel: &str) -> Value {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            ])
            .arg(repo_file(rel))
            .output()
            .expect("python3 runs (install it and `pip install pyyaml`)");
        assert!(
            out.status.success(),
            "parsing {rel} failed (is PyYAML installed? `pip install -r tests/py/requirements.txt`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Declared names, in YAML order, with (required, default) as strings.
    fn yaml_inputs(doc: &Value) -> Vec<(String, bool, Option<String>, String)> {
        let inputs = doc["inputs"].as_object().expect("inputs is a mapping");
        inputs
            .iter()
            .map(|(name, v)| {
                let required = match &v["required"] {
                    Value::Bool(b) => *b,
                    Value::Null => false,
                    other => panic!("input {name}: required must be a boolean, not {other}"),
                };
                let default = match &v["default"] {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => panic!(
                        "input {name}: quote the default ({other}); the runner passes strings and \
                         YAML would otherwise turn false into a boolean"
                    ),
                };
                let description = v["description"]
                    .as_str()
                    .unwrap_or_else(|| panic!("input {name} has no description"))
                    .to_string();
                (name.clone(), required, default, description)
            })
            .collect()
    }

    fn check_against_yaml(rel: &str, spec: &[InputSpec], outputs: &[&str], args: &[&str]) {
        let doc = load_yaml(rel);
        let declared = yaml_inputs(&doc);
        let yaml_names: BTreeSet<&str> = declared.iter().map(|d| d.0.as_str()).collect();
        let code_names: BTreeSet<&str> = spec.iter().map(|s| s.name).collect();
        assert_eq!(
            yaml_names, code_names,
            "{rel} inputs differ from the table in src/action/spec.rs"
        );
        for (name, req, default, _) in &declared {
            let s = spec.iter().find(|s| s.name == name).unwrap();
            assert_eq!(*req, s.required, "{rel}: `required` of {name}");
            let code_default = match s.default {
                InputDefault::None => None,
                InputDefault::Value(v) | InputDefault::Expression(v) => Some(v.to_string()),
            };
            assert_eq!(*default, code_default, "{rel}: default of {name}");
        }
        let yaml_outputs: BTreeSet<&str> = doc["outputs"]
            .as_object()
            .expect("outputs is a mapping")
            .iter()
            .map(|(k, v)| {
                assert!(
                    v["description"].is_string(),
                    "{rel}: output {k} undocumented"
                );
                k.as_str()
            })
            .collect();
        assert_eq!(
            yaml_outputs,
            outputs.iter().copied().collect(),
            "{rel} outputs"
        );
        // Runs the prebuilt image (never compiles on the runner) with the right subcommand.
        assert_eq!(doc["runs"]["using"], "docker", "{rel}");
        let image = doc["runs"]["image"].as_str().unwrap();
        assert!(
            image.starts_with("docker://ghcr.io/") && image.ends_with(":v1"),
            "{rel}: runs.image must be the prebuilt, versioned image, not {image}"
        );
        let yaml_args: Vec<&str> = doc["runs"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(yaml_args, args, "{rel}: runs.args");
        assert!(doc["branding"]["icon"].is_string() && doc["branding"]["color"].is_string());
        assert!(doc["name"].is_string() && doc["description"].is_string());
    }

    #[test]
    fn sign_action_yml_matches_the_code() {
        check_against_yaml("action.yml", SIGN_INPUTS, SIGN_OUTPUTS, &["action", "sign"]);
    }

    #[test]
    fn verify_action_yml_matches_the_code() {
        check_against_yaml(
            "verify/action.yml",
            VERIFY_INPUTS,
            VERIFY_OUTPUTS,
            &["action", "verify"],
        );
    }

    #[test]
    fn check_action_yml_matches_the_code() {
        check_against_yaml(
            "check/action.yml",
            CHECK_INPUTS,
            CHECK_OUTPUTS,
            &["action", "check"],
        );
    }

    #[test]
    fn every_check_output_written_is_declared() {
        let source = include_str!("check.rs");
        for (i, _) in source.match_indices("set_output(\"") {
            let name = source[i + 12..].split('"').next().unwrap();
            assert!(
                CHECK_OUTPUTS.contains(&name),
                "check.rs writes undeclared output {name}"
            );
        }
        for name in CHECK_OUTPUTS {
            assert!(
                source.contains(&format!("set_output(\"{name}\"")),
                "declared output {name} is never written"
            );
        }
    }

    #[test]
    fn the_check_action_reads_every_declared_input() {
        let store = tempfile::tempdir().unwrap();
        let policy = r#"{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],
            "signatureVerification":{"level":"skip"}}]}"#;
        let env = all_set(CHECK_INPUTS, |name| match name {
            "files" => "k8s/**/*.yaml\nDockerfile".into(),
            "fail-on" => "untrusted".into(),
            "trust-policy" => policy.into(),
            "trust-store" => store.path().display().to_string(),
            "registry-ca" => {
                "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into()
            }
            "max-signatures" => "5".into(),
            "check-run" => "false".into(),
            "registry-host" => "registry.example".into(),
            _ => "x".into(),
        });
        let inputs = DeclaredInputs::from_env(env.iter().cloned(), CHECK_INPUTS);
        super::super::check::check_settings_from_inputs(&inputs, &env).expect("every input valid");
        let declared: BTreeSet<&str> = CHECK_INPUTS.iter().map(|s| s.name).collect();
        assert_eq!(inputs.read_names(), declared, "declared but never read");
    }

    #[test]
    fn every_output_written_is_declared() {
        let source = include_str!("run.rs");
        let declared: BTreeSet<&str> = SIGN_OUTPUTS.iter().chain(VERIFY_OUTPUTS).copied().collect();
        for (i, _) in source.match_indices("set_output(\"") {
            let name = source[i + 12..].split('"').next().unwrap();
            assert!(
                declared.contains(name),
                "run.rs writes undeclared output {name}"
            );
        }
        for name in &declared {
            assert!(
                source.contains(&format!("set_output(\"{name}\""))
                    || source.contains(&format!("(\"{name}\", ")),
                "declared output {name} is never written"
            );
        }
    }

    #[test]
    fn literal_defaults_apply_and_empty_values_are_unset() {
        let env = vec![
            ("INPUT_SIGNATURE-FORMAT".to_string(), "".to_string()),
            (
                "INPUT_MANIFEST-FORM".to_string(),
                "artifact-type".to_string(),
            ),
        ];
        let d = DeclaredInputs::from_env(env.into_iter(), SIGN_INPUTS);
        assert_eq!(d.get("signature-format"), Some("jws"));
        assert_eq!(d.get("manifest-form"), Some("artifact-type"));
        assert_eq!(d.get_bool("oci-layout"), Ok(Some(false)));
        // The runner evaluates expressions; the binary must not use the text as a token.
        assert_eq!(d.get("github-token"), None);
    }

    #[test]
    #[should_panic(expected = "not declared")]
    fn reading_an_undeclared_input_panics() {
        let d = DeclaredInputs::from_env(std::iter::empty(), VERIFY_INPUTS);
        let _ = d.get("key");
    }

    /// Every input set to a value the builder accepts: then each declared input must be read.
    fn all_set(spec: &[InputSpec], value: impl Fn(&str) -> String) -> Vec<(String, String)> {
        spec.iter()
            .map(|s| (format!("INPUT_{}", s.name.to_uppercase()), value(s.name)))
            .collect()
    }

    /// The key sources are exclusive, so one run per source; together they read every input.
    #[test]
    fn the_sign_action_reads_every_declared_input() {
        let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        let mut read = BTreeSet::new();
        for (source, kms) in [
            ("key", None),
            ("pkcs11-module", None),
            ("plugin", None),
            ("keyless", None),
            ("kms", Some("azure")),
            ("kms", Some("aws")),
        ] {
            let env: Vec<(String, String)> = all_set(SIGN_INPUTS, |name| match name {
                "images" => "registry.example/app@sha256:".to_string() + &"a".repeat(64),
                "key" | "certificate-chain" | "timestamp-root-cert" | "registry-ca" => pem.into(),
                "signature-format" => "cose".into(),
                "manifest-form" => "artifact-type".into(),
                "expiry" => "30d".into(),
                "user-metadata" | "plugin-config" => "k=v".into(),
                "timestamp-url" => "http://127.0.0.1:1/tsa".into(),
                "oci-layout" | "recursive" => "true".into(),
                "kms" => kms.unwrap_or("azure").into(),
                "kms-key" => "https://vault.example.net/keys/signing".into(),
                "aws-role-arn" => "arn:aws:iam::111122223333:role/signer".into(),
                "keyless" => (source == "keyless").to_string(),
                "fulcio-url" => "https://fulcio.example".into(),
                _ => "x".into(),
            })
            .into_iter()
            .filter(|(k, _)| {
                let other = [
                    "INPUT_KEY",
                    "INPUT_PKCS11-MODULE",
                    "INPUT_PLUGIN",
                    "INPUT_KMS",
                ];
                !other.contains(&k.as_str()) || *k == format!("INPUT_{}", source.to_uppercase())
            })
            // A keyless run takes its chain from the CA and its token from one place.
            .filter(|(k, _)| {
                source != "keyless"
                    || !["INPUT_CERTIFICATE-CHAIN", "INPUT_OIDC-AUDIENCE"].contains(&k.as_str())
            })
            // A KMS run takes its token from one place too.
            .filter(|(k, _)| source != "kms" || k != "INPUT_OIDC-AUDIENCE")
            .collect();
            let inputs = DeclaredInputs::from_env(env.iter().cloned(), SIGN_INPUTS);
            let mut commands = super::super::Commands::new(Vec::new(), super::super::Mode::Action);
            super::super::run::sign_request_from_inputs(&inputs, &env, &mut commands)
                .unwrap_or_else(|e| panic!("with {source}: {e:#}"));
            read.extend(inputs.read_names());
        }
        let declared: BTreeSet<&str> = SIGN_INPUTS.iter().map(|s| s.name).collect();
        assert_eq!(read, declared, "declared but never read");
    }

    #[test]
    fn the_verify_action_reads_every_declared_input() {
        let store = tempfile::tempdir().unwrap();
        let policy = r#"{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],
            "signatureVerification":{"level":"skip"}}]}"#;
        let env = all_set(VERIFY_INPUTS, |name| match name {
            "images" => "registry.example/app@sha256:".to_string() + &"a".repeat(64),
            "trust-policy" => policy.into(),
            "trust-store" => store.path().display().to_string(),
            "registry-ca" => {
                "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into()
            }
            "user-metadata" | "plugin-config" => "k=v".into(),
            "max-signatures" => "5".into(),
            "oci-layout" | "recursive" | "allow-any-keyless-identity" => "true".into(),
            _ => "x".into(),
        });
        let inputs = DeclaredInputs::from_env(env.iter().cloned(), VERIFY_INPUTS);
        super::super::run::verify_request_from_inputs(&inputs, &env).expect("every input valid");
        let declared: BTreeSet<&str> = VERIFY_INPUTS.iter().map(|s| s.name).collect();
        assert_eq!(inputs.read_names(), declared, "declared but never read");
    }

    // --- README tables -------------------------------------------------------------------

    fn cell(text: &str) -> String {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|")
    }

    /// The Markdown table of one action's inputs and outputs, from its action.yml.
    fn render_table(rel: &str) -> String {
        let doc = load_yaml(rel);
        let mut out =
            String::from("| input | required | default | description |\n|---|---|---|---|\n");
        for (name, req, default, description) in yaml_inputs(&doc) {
            let default = match default {
                Some(d) => format!("`{}`", d.replace('|', "\\|")),
                None => String::new(),
            };
            out.push_str(&format!(
                "| `{name}` | {} | {default} | {} |\n",
                if req { "yes" } else { "no" },
                cell(&description)
            ));
        }
        out.push_str("\n| output | description |\n|---|---|\n");
        for (name, v) in doc["outputs"].as_object().unwrap() {
            out.push_str(&format!(
                "| `{name}` | {} |\n",
                cell(v["description"].as_str().unwrap())
            ));
        }
        out
    }

    /// Replace the text between `<!-- inputs:NAME:start -->` and `<!-- inputs:NAME:end -->`.
    fn splice(readme: &str, marker: &str, table: &str) -> String {
        let start = format!("<!-- inputs:{marker}:start -->");
        let end = format!("<!-- inputs:{marker}:end -->");
        let a = readme
            .find(&start)
            .unwrap_or_else(|| panic!("README.md lacks {start}"));
        let b = readme
            .find(&end)
            .unwrap_or_else(|| panic!("README.md lacks {end}"));
        assert!(a < b, "README.md: {start} must come before {end}");
        format!(
            "{}{start}\n<!-- generated from {}: edit it, then regenerate -->\n{table}{}",
            &readme[..a],
            match marker {
                "sign" => "action.yml",
                "check" => "check/action.yml",
                _ => "verify/action.yml",
            },
            &readme[b..]
        )
    }

    /// README.md's tables are generated from the action files. Regenerate with
    /// `SIGN_ACTION_BLESS=1 cargo test --bins readme_tables`.
    #[test]
    fn readme_tables_are_current() {
        let path = repo_file("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let mut fresh = splice(&readme, "sign", &render_table("action.yml"));
        fresh = splice(&fresh, "verify", &render_table("verify/action.yml"));
        fresh = splice(&fresh, "check", &render_table("check/action.yml"));
        if fresh == readme {
            return;
        }
        if std::env::var_os("SIGN_ACTION_BLESS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        panic!(
            "README.md's input/output tables are stale. Regenerate them with\n  \
             SIGN_ACTION_BLESS=1 cargo test --bins readme_tables\nand commit README.md."
        );
    }
}
