//! Step outputs (`GITHUB_OUTPUT`) and the job summary (`GITHUB_STEP_SUMMARY`).
//!
//! Outputs use the runner's heredoc form, `name<<DELIM`, value lines, `DELIM`, with a fresh
//! random delimiter for every value: a fixed one (`EOF`) lets a value that contains it (a
//! registry error, an annotation) end the heredoc early and set other outputs.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The runner refuses a step summary above 1 MiB (and then shows none of it).
pub const MAX_SUMMARY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("invalid output name {0:?}: use letters, digits, `-` and `_`")]
    InvalidName(String),
    #[error("the value of output `{0}` contains the heredoc delimiter; refusing to write it")]
    DelimiterCollision(String),
    #[error("cannot write {what} to {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the step summary would exceed {MAX_SUMMARY_BYTES} bytes (the runner would drop all of \
         it); not appended"
    )]
    SummaryTooLarge,
}

/// What happened to an output or summary write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Written,
    /// The runner's variable is not set: not on a runner, nothing to do.
    Skipped,
}

/// The files the runner gave us; None when the variable is missing or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    pub output_file: Option<PathBuf>,
    pub summary_file: Option<PathBuf>,
}

impl Outputs {
    pub fn from_env(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut o = Outputs::default();
        for (k, v) in env {
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "GITHUB_OUTPUT" => o.output_file = Some(PathBuf::from(v)),
                "GITHUB_STEP_SUMMARY" => o.summary_file = Some(PathBuf::from(v)),
                _ => {}
            }
        }
        o
    }

    /// Append `name` = `value` to `GITHUB_OUTPUT`.
    pub fn set_output(&self, name: &str, value: &str) -> Result<Delivery, OutputError> {
        let record = heredoc(name, value, &new_delimiter())?;
        let Some(path) = &self.output_file else {
            return Ok(Delivery::Skipped);
        };
        append(path, record.as_bytes(), "output")?;
        Ok(Delivery::Written)
    }

    /// Append Markdown to the job summary, followed by a newline.
    pub fn append_summary(&self, markdown: &str) -> Result<Delivery, OutputError> {
        let Some(path) = &self.summary_file else {
            return Ok(Delivery::Skipped);
        };
        let existing = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut text = markdown.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        if existing + text.len() as u64 > MAX_SUMMARY_BYTES {
            return Err(OutputError::SummaryTooLarge);
        }
        append(path, text.as_bytes(), "the step summary")?;
        Ok(Delivery::Written)
    }
}

/// `ghadelimiter_` and 128 random bits, the shape `@actions/core` uses.
fn new_delimiter() -> String {
    format!("ghadelimiter_{}", super::commands::random_token())
}

/// One heredoc record. Names are restricted so that they cannot carry `<<`, `=` or a newline
/// and so change how the runner reads the file.
fn heredoc(name: &str, value: &str, delimiter: &str) -> Result<String, OutputError> {
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(OutputError::InvalidName(name.to_string()));
    }
    if value.contains(delimiter) {
        return Err(OutputError::DelimiterCollision(name.to_string()));
    }
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// Append in one write to an existing file: the runner creates these files, so a missing one
/// means a misconfigured environment and is reported, not silently created elsewhere.
fn append(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new().append(true).open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Reads a `GITHUB_OUTPUT` file the way the runner does: `name=value` lines, or
    /// `name<<DELIM` then lines up to a line equal to `DELIM`; a missing delimiter is an error.
    fn parse_runner_file(text: &str) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        let mut lines = text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let eq = line.find('=');
            let hd = line.find("<<");
            match (eq, hd) {
                (Some(e), h) if h.is_none_or(|h| h >= e) => {
                    out.insert(line[..e].to_string(), line[e + 1..].to_string());
                }
                (_, Some(h)) => {
                    let name = &line[..h];
                    let delim = &line[h + 2..];
                    if name.is_empty() || delim.is_empty() {
                        return Err(format!("bad heredoc header {line:?}"));
                    }
                    let mut value: Vec<&str> = Vec::new();
                    loop {
                        let Some(l) = lines.next() else {
                            return Err(format!("missing delimiter {delim}"));
                        };
                        let l = l.strip_suffix('\r').unwrap_or(l);
                        if l == delim {
                            break;
                        }
                        value.push(l);
                    }
                    out.insert(name.to_string(), value.join("\n"));
                }
                _ => return Err(format!("bad line {line:?}")),
            }
        }
        Ok(out)
    }

    fn runner_files() -> (tempfile::TempDir, Outputs) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("output");
        let sum = dir.path().join("summary");
        std::fs::write(&out, "").unwrap();
        std::fs::write(&sum, "").unwrap();
        let o = Outputs::from_env([
            ("GITHUB_OUTPUT".to_string(), out.display().to_string()),
            ("GITHUB_STEP_SUMMARY".to_string(), sum.display().to_string()),
        ]);
        (dir, o)
    }

    #[test]
    fn heredoc_round_trip() {
        let (_dir, o) = runner_files();
        let json = r#"[{"reference":"ghcr.io/a/b:1","digest":"sha256:00"}]"#;
        let tricky = "line1\nEOF\nfoo=bar\nx<<EOF\n%0A ::set-output name=a:: ünï ✓\n";
        assert_eq!(o.set_output("signatures", json).unwrap(), Delivery::Written);
        assert_eq!(
            o.set_output("tricky_one", tricky).unwrap(),
            Delivery::Written
        );
        assert_eq!(o.set_output("empty", "").unwrap(), Delivery::Written);
        let text = std::fs::read_to_string(o.output_file.as_ref().unwrap()).unwrap();
        let parsed = parse_runner_file(&text).unwrap();
        assert_eq!(parsed.len(), 3, "{parsed:?}");
        assert_eq!(parsed["signatures"], json);
        assert_eq!(parsed["tricky_one"], tricky);
        assert_eq!(parsed["empty"], "");
        // Each record has its own random delimiter of the expected shape.
        let headers: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("<<ghadelimiter_"))
            .collect();
        assert_eq!(headers.len(), 3);
        let delims: Vec<&str> = headers
            .iter()
            .map(|h| h.split("<<").nth(1).unwrap())
            .collect();
        for d in &delims {
            let hex = d.strip_prefix("ghadelimiter_").unwrap();
            assert_eq!(hex.len(), 32);
            assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_ne!(delims[0], delims[1]);
    }

    #[test]
    fn appends_to_existing_content() {
        let (_dir, o) = runner_files();
        let path = o.output_file.clone().unwrap();
        std::fs::write(&path, "earlier=1\n").unwrap();
        o.set_output("later", "2").unwrap();
        let parsed = parse_runner_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(parsed["earlier"], "1");
        assert_eq!(parsed["later"], "2");
    }

    #[test]
    fn delimiter_collision_refused() {
        let err = heredoc("x", "a\nghadelimiter_abc\nb", "ghadelimiter_abc").unwrap_err();
        assert!(matches!(err, OutputError::DelimiterCollision(ref n) if n == "x"));
        assert!(err.to_string().contains("`x`"));
        // Inside a longer line it would not end the heredoc, but it is refused all the same.
        assert!(heredoc("x", "zzghadelimiter_abczz", "ghadelimiter_abc").is_err());
        assert_eq!(
            heredoc("x", "ghadelimiter_ab", "ghadelimiter_abc").unwrap(),
            "x<<ghadelimiter_abc\nghadelimiter_ab\nghadelimiter_abc\n"
        );
    }

    #[test]
    fn bad_names_refused() {
        let (_dir, o) = runner_files();
        for name in ["", "a b", "a\nb", "a<<b", "a=b", "ü"] {
            assert!(
                matches!(o.set_output(name, "v"), Err(OutputError::InvalidName(_))),
                "{name:?}"
            );
        }
        let text = std::fs::read_to_string(o.output_file.as_ref().unwrap()).unwrap();
        assert_eq!(text, "");
    }

    #[test]
    fn skipped_without_runner_files() {
        let o = Outputs::from_env([
            ("GITHUB_OUTPUT".to_string(), String::new()),
            ("HOME".to_string(), "/root".to_string()),
        ]);
        assert_eq!(o, Outputs::default());
        assert_eq!(o.set_output("a", "b").unwrap(), Delivery::Skipped);
        assert_eq!(o.append_summary("# hi").unwrap(), Delivery::Skipped);
        // Bad names are refused even when nothing would be written: a bug, not an environment.
        assert!(o.set_output("a b", "c").is_err());
    }

    #[test]
    fn missing_runner_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outputs {
            output_file: Some(dir.path().join("gone")),
            summary_file: None,
        };
        let err = o.set_output("a", "b").unwrap_err();
        assert!(matches!(err, OutputError::Io { .. }), "{err}");
        assert!(!dir.path().join("gone").exists());
    }

    #[test]
    fn summary_appends_with_newline_and_bounds_size() {
        let (_dir, o) = runner_files();
        let path = o.summary_file.clone().unwrap();
        o.append_summary("# One").unwrap();
        o.append_summary("two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# One\ntwo\n");
        let big = "x".repeat(MAX_SUMMARY_BYTES as usize);
        assert!(matches!(
            o.append_summary(&big),
            Err(OutputError::SummaryTooLarge)
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# One\ntwo\n");
    }
}
