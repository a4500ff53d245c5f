//! Action inputs from `INPUT_*` environment variables.
//!
//! The runner derives the variable name by upper-casing the input name and replacing spaces with
//! `_`, but keeps hyphens (`signature-format` → `INPUT_SIGNATURE-FORMAT`), and sets every
//! declared input, so an input left out of the workflow arrives as `""`. Hand-written because
//! the generic env-deserialisers cannot express hyphenated names and treat `""` as a value.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Largest PEM file read for a key or certificate input: far above any real chain, small enough
/// that a mistaken path (a device, a huge file) cannot exhaust memory.
const MAX_PEM_FILE: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error(
        "input `{name}` must be a boolean: one of true, True, TRUE, false, False, FALSE \
         (YAML 1.2 core schema)"
    )]
    NotBoolean { name: String },
    #[error("input `{name}` is required but was not set")]
    Missing { name: String },
    #[error("cannot read {what}: {reason}")]
    Read { what: String, reason: String },
}

/// The action's inputs, keyed by the runner's variable suffix (`SIGNATURE-FORMAT`). Empty
/// values are not stored: an input set to `""` is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    values: BTreeMap<String, String>,
}

/// The variable suffix the runner uses for input `name`.
fn env_key(name: &str) -> String {
    name.replace(' ', "_").to_uppercase()
}

/// Collect `INPUT_*` variables from `env` (pass `std::env::vars()`).
pub fn read_inputs(env: impl Iterator<Item = (String, String)>) -> Inputs {
    let values = env
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("INPUT_")?;
            if key.is_empty() || v.trim().is_empty() {
                return None;
            }
            Some((key.to_string(), v))
        })
        .collect();
    Inputs { values }
}

/// Names of `INPUT_*` variables that are present but empty. clap's `env` treats them as given
/// (an empty `--signature-format ""`), so the binary removes them before parsing.
pub fn empty_input_vars(env: impl Iterator<Item = (String, String)>) -> Vec<String> {
    env.filter(|(k, v)| k.starts_with("INPUT_") && v.trim().is_empty())
        .map(|(k, _)| k)
        .collect()
}

impl Inputs {
    /// The input's value, trimmed (as `@actions/core` `getInput` does); None when unset/empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(&env_key(name))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Like [`get`](Self::get), but an unset input is an error naming it.
    pub fn require(&self, name: &str) -> Result<&str, InputError> {
        self.get(name).ok_or_else(|| InputError::Missing {
            name: name.to_string(),
        })
    }

    /// A boolean input per the YAML 1.2 core schema (what `getBooleanInput` accepts); anything
    /// else is an error rather than a guess. None when unset.
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>, InputError> {
        match self.get(name) {
            None => Ok(None),
            Some("true" | "True" | "TRUE") => Ok(Some(true)),
            Some("false" | "False" | "FALSE") => Ok(Some(false)),
            Some(_) => Err(InputError::NotBoolean {
                name: name.to_string(),
            }),
        }
    }

    /// A list input: one item per line, trimmed; blank lines and `#` comments dropped.
    pub fn get_multiline(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An input that holds either PEM text itself or the path of a PEM file.
///
/// The path is named in errors only when it looks like one (a single short line): a value that
/// is neither PEM nor a path may be key material in another encoding, and is not echoed.
pub fn pem_or_path(value: &str) -> Result<Vec<u8>, InputError> {
    if value.contains("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    let path = value.trim();
    let what = if path.len() <= 256 && !path.contains(['\n', '\r']) {
        format!("PEM file `{path}`")
    } else {
        "the input as a file path (it is not PEM text either)".to_string()
    };
    let fail = |reason: String| InputError::Read {
        what: what.clone(),
        reason,
    };
    if path.is_empty() {
        return Err(fail("the value is empty".into()));
    }
    let file = std::fs::File::open(Path::new(path)).map_err(|e| fail(e.to_string()))?;
    let mut buf = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(e.to_string()))?;
    if buf.len() as u64 > MAX_PEM_FILE {
        return Err(fail(format!("larger than {MAX_PEM_FILE} bytes")));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(vars: &[(&str, &str)]) -> Inputs {
        read_inputs(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn hyphens_kept_spaces_become_underscores() {
        let i = inputs(&[
            ("INPUT_SIGNATURE-FORMAT", "cose"),
            ("INPUT_KEY_ID", "k1"),
            ("INPUT_TRUST POLICY", "wrong: runner never sets spaces"),
            ("INPUT_TRUST_POLICY", "p.json"),
            ("GITHUB_TOKEN", "not an input"),
        ]);
        assert_eq!(i.get("signature-format"), Some("cose"));
        assert_eq!(i.get("Signature-Format"), Some("cose"));
        // A hyphenated name does not match the underscore variable, or vice versa.
        assert_eq!(i.get("signature_format"), None);
        assert_eq!(i.get("key-id"), None);
        assert_eq!(i.get("key_id"), Some("k1"));
        assert_eq!(i.get("trust policy"), Some("p.json"));
        assert_eq!(i.get("github-token"), None);
        assert_eq!(i.get("GITHUB_TOKEN"), None);
    }

    #[test]
    fn empty_values_are_unset() {
        let i = inputs(&[("INPUT_KEY", ""), ("INPUT_CERT", "  \n "), ("INPUT_", "x")]);
        assert_eq!(i.get("key"), None);
        assert_eq!(i.get("cert"), None);
        assert_eq!(i, Inputs::default());
        assert_eq!(
            i.require("key"),
            Err(InputError::Missing { name: "key".into() })
        );
        let vars = [("INPUT_KEY", ""), ("INPUT_A", "1"), ("OTHER", "")];
        let empty = empty_input_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(empty, vec!["INPUT_KEY".to_string()]);
    }

    #[test]
    fn values_are_trimmed() {
        let i = inputs(&[("INPUT_FORMAT", "  jws \n")]);
        assert_eq!(i.get("format"), Some("jws"));
        assert_eq!(i.require("format"), Ok("jws"));
    }

    #[test]
    fn booleans_follow_yaml_core_schema() {
        for (v, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("False", false),
            ("FALSE", false),
            (" true\n", true),
        ] {
            let i = inputs(&[("INPUT_DRY-RUN", v)]);
            assert_eq!(i.get_bool("dry-run"), Ok(Some(want)), "{v:?}");
        }
        for v in ["yes", "no", "1", "0", "tRUE", "on", "y", "truee"] {
            let i = inputs(&[("INPUT_DRY-RUN", v)]);
            let err = i.get_bool("dry-run").unwrap_err();
            assert_eq!(
                err,
                InputError::NotBoolean {
                    name: "dry-run".into()
                }
            );
            assert!(err.to_string().contains("`dry-run`"));
        }
        assert_eq!(inputs(&[]).get_bool("dry-run"), Ok(None));
        assert_eq!(
            inputs(&[("INPUT_DRY-RUN", "")]).get_bool("dry-run"),
            Ok(None)
        );
    }

    #[test]
    fn multiline_lists() {
        let i = inputs(&[(
            "INPUT_ARTIFACTS",
            "ghcr.io/a/b:1\n\n  # a comment\r\n  ghcr.io/a/c@sha256:00  \r\n#x\nlocal:dir\n",
        )]);
        assert_eq!(
            i.get_multiline("artifacts"),
            vec!["ghcr.io/a/b:1", "ghcr.io/a/c@sha256:00", "local:dir"]
        );
        assert!(inputs(&[]).get_multiline("artifacts").is_empty());
        assert!(inputs(&[("INPUT_ARTIFACTS", "# only\n#comments")])
            .get_multiline("artifacts")
            .is_empty());
    }

    #[test]
    fn pem_text_is_used_as_is() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_or_path(pem).unwrap(), pem.as_bytes());
    }

    #[test]
    fn pem_path_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, b"-----BEGIN PRIVATE KEY-----\nAA==\n").unwrap();
        let got = pem_or_path(&format!(" {}\n", path.display())).unwrap();
        assert_eq!(got, b"-----BEGIN PRIVATE KEY-----\nAA==\n");
    }

    #[test]
    fn missing_file_is_named_but_secret_looking_values_are_not() {
        let err = pem_or_path("/nonexistent/key.pem").unwrap_err();
        assert!(err.to_string().contains("`/nonexistent/key.pem`"), "{err}");

        let blob = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC".repeat(8);
        let err = pem_or_path(&blob).unwrap_err().to_string();
        assert!(!err.contains("MIIEvQ"), "{err}");
        let err = pem_or_path("line1\nline2").unwrap_err().to_string();
        assert!(!err.contains("line1"), "{err}");
        assert!(pem_or_path("  ").is_err());
    }

    #[test]
    fn oversized_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pem");
        std::fs::write(&path, vec![b'A'; (MAX_PEM_FILE + 1) as usize]).unwrap();
        let err = pem_or_path(path.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        std::fs::write(&path, vec![b'A'; MAX_PEM_FILE as usize]).unwrap();
        assert_eq!(pem_or_path(path.to_str().unwrap()).unwrap().len(), 1 << 20);
    }
}
