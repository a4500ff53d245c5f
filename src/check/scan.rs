//! Which files to scan and what kind each is.
//!
//! Patterns are matched by a small glob matcher of our own (`*`, `?`, `**`, `[…]`, `{a,b}`):
//! the glob crates bring a regex engine for what is a few dozen lines here.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{dockerfile, yaml, ImageRef, ScanError, Skipped};

/// Largest file scanned: far above any manifest, small enough that a stray artifact (a
/// rendered bundle, a binary named .yaml) cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Directories never walked into.
const SKIP_DIRS: &[&str] = &[".git", "node_modules", "target", ".terraform", "vendor"];

/// Files walked into at most: a workspace bigger than this is a mistake (a mounted disk).
const MAX_WALK_FILES: usize = 200_000;

/// What a file holds, decided by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Yaml,
    Dockerfile,
}

/// The kind of `path` by name: `Dockerfile`, `Containerfile`, `Dockerfile.*`, `*.Dockerfile`,
/// `*.dockerfile`; `*.yaml`, `*.yml`. None for anything else.
pub fn file_kind(path: &str) -> Option<FileKind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    if lower == "dockerfile"
        || lower == "containerfile"
        || lower.starts_with("dockerfile.")
        || lower.starts_with("containerfile.")
        || lower.ends_with(".dockerfile")
        || lower.ends_with(".containerfile")
    {
        return Some(FileKind::Dockerfile);
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return Some(FileKind::Yaml);
    }
    None
}

/// Everything found in a set of files.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScanReport {
    /// Files scanned (relative paths).
    pub files: Vec<String>,
    pub references: Vec<ImageRef>,
    pub skipped: Vec<Skipped>,
    /// Files that could not be scanned, with why.
    #[serde(serialize_with = "errors_as_strings")]
    pub errors: Vec<ScanError>,
}

fn errors_as_strings<S: serde::Serializer>(e: &[ScanError], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(e.iter().map(|e| e.to_string()))
}

/// Scan one file's text.
pub fn scan_text(
    file: &str,
    kind: FileKind,
    text: &str,
) -> Result<(Vec<ImageRef>, Vec<Skipped>), ScanError> {
    match kind {
        FileKind::Dockerfile => Ok(dockerfile::scan(file, text)),
        FileKind::Yaml => yaml::scan(file, text),
    }
}

/// Scan `files` (paths relative to `root`). Unreadable or invalid files are reported in the
/// result and do not stop the others.
pub fn scan_files(root: &Path, files: &[String]) -> ScanReport {
    let mut report = ScanReport::default();
    for file in files {
        let kind = file_kind(file).unwrap_or(FileKind::Yaml);
        let path = root.join(file);
        let text = match read_bounded(&path) {
            Ok(t) => t,
            Err(message) => {
                report.errors.push(if message.is_empty() {
                    ScanError::TooLarge {
                        file: file.clone(),
                        limit: MAX_FILE_BYTES,
                    }
                } else {
                    ScanError::Read {
                        file: file.clone(),
                        message,
                    }
                });
                continue;
            }
        };
        report.files.push(file.clone());
        match scan_text(file, kind, &text) {
            Ok((refs, skipped)) => {
                report.references.extend(refs);
                report.skipped.extend(skipped);
            }
            // A chart's templates are YAML only once rendered: not an error, but nothing we
            // can check here.
            Err(ScanError::Yaml { line, .. }) if kind == FileKind::Yaml && text.contains("{{") => {
                report.skipped.push(Skipped {
                    file: file.clone(),
                    line,
                    column: 1,
                    text: String::new(),
                    reason: "a template (it contains `{{`), YAML only once rendered; check the rendered output (helm template) instead".into(),
                });
            }
            Err(e) => report.errors.push(e),
        }
    }
    report
}

/// The file as UTF-8 text; an empty error message means "too large".
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(String::new());
    }
    String::from_utf8(buf).map_err(|_| "not UTF-8 text".to_string())
}

/// The files under `root` that `patterns` name, relative, sorted and without duplicates.
///
/// A pattern naming an existing file takes it whatever its name; one naming a directory takes
/// every recognised file ([`file_kind`]) below it; anything else is a glob matched against
/// the relative paths of recognised files. No pattern means the whole of `root`.
pub fn collect_files(root: &Path, patterns: &[String]) -> Result<Vec<String>, ScanError> {
    let mut out: Vec<String> = Vec::new();
    let mut all: Option<Vec<String>> = None;
    let patterns: Vec<String> = if patterns.is_empty() {
        vec![".".to_string()]
    } else {
        patterns.to_vec()
    };
    for pattern in &patterns {
        let trimmed = pattern.trim().trim_start_matches("./");
        let trimmed = if trimmed.is_empty() { "." } else { trimmed };
        if Path::new(trimmed).is_absolute() || trimmed.split('/').any(|c| c == "..") {
            return Err(ScanError::Pattern {
                pattern: pattern.clone(),
                message: "give paths relative to the repository root, without `..`".into(),
            });
        }
        let path = root.join(trimmed);
        if !has_glob(trimmed) && path.is_file() {
            out.push(trimmed.to_string());
            continue;
        }
        if !has_glob(trimmed) && path.is_dir() {
            let mut found = Vec::new();
            walk(root, &path, &mut found)?;
            out.extend(found);
            continue;
        }
        let glob = Glob::new(trimmed).map_err(|message| ScanError::Pattern {
            pattern: pattern.clone(),
            message,
        })?;
        if all.is_none() {
            let mut found = Vec::new();
            walk(root, root, &mut found)?;
            all = Some(found);
        }
        out.extend(
            all.as_ref()
                .expect("walked above")
                .iter()
                .filter(|f| glob.matches(f))
                .cloned(),
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// Recognised files below `dir`, as paths relative to `root`. Symbolic links are not
/// followed: a link could lead out of the repository.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ScanError> {
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| ScanError::Read {
            file: d.display().to_string(),
            message: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str()) {
                    stack.push(entry.path());
                }
            } else if ft.is_file() {
                let Ok(rel) = entry.path().strip_prefix(root).map(Path::to_path_buf) else {
                    continue;
                };
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if file_kind(&rel).is_some() {
                    out.push(rel);
                    if out.len() > MAX_WALK_FILES {
                        return Err(ScanError::Pattern {
                            pattern: dir.display().to_string(),
                            message: format!(
                                "more than {MAX_WALK_FILES} candidate files; name the files to scan"
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// A compiled glob: `*` and `?` stay within a path component, `**` spans components,
/// `[abc]`/`[a-z]`/`[!x]` are classes and `{a,b}` alternatives.
#[derive(Debug, Clone)]
pub struct Glob {
    alternatives: Vec<Vec<char>>,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let alternatives = expand_braces(pattern)?
            .into_iter()
            .map(|p| p.chars().collect())
            .collect();
        Ok(Glob { alternatives })
    }

    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<char> = path.chars().collect();
        self.alternatives.iter().any(|p| glob_match(p, &path))
    }
}

/// `a{b,c}d` → `abd`, `acd` (nested braces too); at most 256 alternatives.
fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
    };
    let mut depth = 0;
    let mut close = None;
    let mut splits = Vec::new();
    for (i, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => splits.push(open + i),
            _ => {}
        }
    }
    let close = close.ok_or("unclosed `{`")?;
    let mut bounds = vec![open];
    bounds.extend(splits);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let middle = &pattern[w[0] + 1..w[1]];
        let candidate = format!("{}{middle}{}", &pattern[..open], &pattern[close + 1..]);
        out.extend(expand_braces(&candidate)?);
        if out.len() > 256 {
            return Err("too many `{…}` alternatives".into());
        }
    }
    Ok(out)
}

/// Memoised on (pattern position, path position), so patterns with many stars stay linear in
/// their product rather than exponential.
fn glob_match(p: &[char], s: &[char]) -> bool {
    let mut memo = vec![None; (p.len() + 1) * (s.len() + 1)];
    glob_at(p, s, 0, 0, &mut memo)
}

fn glob_at(p: &[char], s: &[char], pi: usize, si: usize, memo: &mut [Option<bool>]) -> bool {
    let key = pi * (s.len() + 1) + si;
    if let Some(known) = memo[key] {
        return known;
    }
    let result = glob_step(p, s, pi, si, memo);
    memo[key] = Some(result);
    result
}

fn glob_step(p: &[char], s: &[char], pi: usize, si: usize, memo: &mut [Option<bool>]) -> bool {
    let (pr, sr) = (&p[pi..], &s[si..]);
    // `**/` matches zero or more whole components; a trailing `**` matches the rest.
    if pr.len() >= 2 && pr[0] == '*' && pr[1] == '*' {
        let rest = if pr.len() > 2 && pr[2] == '/' {
            pi + 3
        } else {
            pi + 2
        };
        if glob_at(p, s, rest, si, memo) {
            return true;
        }
        for (i, c) in sr.iter().enumerate() {
            if *c == '/' && glob_at(p, s, rest, si + i + 1, memo) {
                return true;
            }
        }
        return rest == p.len();
    }
    match pr.first() {
        None => sr.is_empty(),
        Some('*') => {
            for i in 0..=sr.len() {
                if glob_at(p, s, pi + 1, si + i, memo) {
                    return true;
                }
                if i < sr.len() && sr[i] == '/' {
                    break;
                }
            }
            false
        }
        Some('?') => !sr.is_empty() && sr[0] != '/' && glob_at(p, s, pi + 1, si + 1, memo),
        Some('[') => {
            let Some(end) = pr.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                return !sr.is_empty() && sr[0] == '[' && glob_at(p, s, pi + 1, si + 1, memo);
            };
            let Some(&c) = sr.first() else { return false };
            if c == '/' {
                return false;
            }
            let (negate, class) = match pr[1] {
                '!' | '^' => (true, &pr[2..end]),
                _ => (false, &pr[1..end]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && glob_at(p, s, pi + end + 1, si + 1, memo)
        }
        Some(&c) => !sr.is_empty() && sr[0] == c && glob_at(p, s, pi + 1, si + 1, memo),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    #[test]
    fn globs() {
        assert!(m("*.yaml", "a.yaml"));
        assert!(!m("*.yaml", "k8s/a.yaml"));
        assert!(m("**/*.yaml", "a.yaml"));
        assert!(m("**/*.yaml", "k8s/x/a.yaml"));
        assert!(m("k8s/**", "k8s/x/a.yaml"));
        assert!(!m("k8s/**", "other/a.yaml"));
        assert!(m("k8s/**/deploy.yml", "k8s/deploy.yml"));
        assert!(m("**/Dockerfile*", "svc/Dockerfile.prod"));
        assert!(m("*.{yml,yaml}", "a.yml"));
        assert!(m("*.{yml,yaml}", "a.yaml"));
        assert!(!m("*.{yml,yaml}", "a.json"));
        assert!(m("deploy/[a-c]?.yaml", "deploy/b1.yaml"));
        assert!(!m("deploy/[!a-c]?.yaml", "deploy/b1.yaml"));
        assert!(m(".github/workflows/*.yml", ".github/workflows/ci.yml"));
        assert!(Glob::new("a{b").is_err());
        // Many stars against a long near-miss: memoised, so this returns at once.
        let long = format!("{}b", "a".repeat(200));
        assert!(!m("*a*a*a*a*a*a*a*a*a*a*a*a*c", &long));
        assert!(m("**/**/**/**/**/**/x", "a/b/c/d/e/f/g/h/x"));
    }

    #[test]
    fn unrendered_templates_are_skipped_and_broken_yaml_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("deploy.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      {{- range .Values.apps }}\n        - image: {{ .image }}\n      {{- end }}\n",
        )
        .unwrap();
        std::fs::write(root.join("broken.yaml"), "a: [b\n").unwrap();
        let report = scan_files(root, &["broken.yaml".into(), "deploy.yaml".into()]);
        assert!(report.references.is_empty());
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].file, "deploy.yaml");
        assert!(report.skipped[0].reason.contains("helm template"));
        assert_eq!(report.errors.len(), 1);
        assert!(report.errors[0].to_string().starts_with("broken.yaml:"));
    }

    /// Mutated fixtures (deterministic, seeded): the scanners return results or errors, never
    /// panic. The fuzz target `check_scan` does this without end.
    #[test]
    fn mutated_inputs_never_panic() {
        let seeds = [
            include_str!("../../tests/fixtures/check/repo/k8s/app.yaml"),
            include_str!("../../tests/fixtures/check/repo/compose.yaml"),
            include_str!("../../tests/fixtures/check/repo/Dockerfile"),
            include_str!("../../tests/fixtures/check/repo/.github/workflows/deploy.yml"),
        ];
        let alphabet: Vec<char> = ":-[]{}&*!|>'\"#\n \t\\$<@,?%`é".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for seed in seeds {
            for _ in 0..300 {
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..(1 + next() % 8) {
                    let at = (next() as usize) % (chars.len() + 1);
                    match next() % 3 {
                        0 if at < chars.len() => {
                            chars.remove(at);
                        }
                        1 if at < chars.len() => {
                            chars.truncate(at);
                        }
                        _ => chars.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    }
                }
                let text: String = chars.into_iter().collect();
                let _ = scan_text(".github/workflows/x.yml", FileKind::Yaml, &text);
                let _ = scan_text("k8s/x.yaml", FileKind::Yaml, &text);
                let _ = scan_text("Dockerfile", FileKind::Dockerfile, &text);
            }
        }
    }

    #[test]
    fn kinds_by_name() {
        assert_eq!(file_kind("Dockerfile"), Some(FileKind::Dockerfile));
        assert_eq!(file_kind("svc/Dockerfile.prod"), Some(FileKind::Dockerfile));
        assert_eq!(file_kind("svc/api.Dockerfile"), Some(FileKind::Dockerfile));
        assert_eq!(file_kind("Containerfile"), Some(FileKind::Dockerfile));
        assert_eq!(file_kind("k8s/app.YAML"), Some(FileKind::Yaml));
        assert_eq!(file_kind("README.md"), None);
    }

    #[test]
    fn collect_walks_globs_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "k8s/a.yaml",
            "k8s/sub/b.yml",
            "Dockerfile",
            "docs/readme.md",
            ".git/config.yaml",
            "node_modules/x/c.yaml",
            "odd.txt",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "").unwrap();
        }
        assert_eq!(
            collect_files(root, &[]).unwrap(),
            vec!["Dockerfile", "k8s/a.yaml", "k8s/sub/b.yml"]
        );
        assert_eq!(
            collect_files(root, &["k8s/**/*.yml".into(), "odd.txt".into()]).unwrap(),
            vec!["k8s/sub/b.yml", "odd.txt"]
        );
        assert_eq!(
            collect_files(root, &["./k8s".into()]).unwrap(),
            vec!["k8s/a.yaml", "k8s/sub/b.yml"]
        );
        assert!(collect_files(root, &["../x".into()]).is_err());
        assert!(collect_files(root, &["/etc/passwd".into()]).is_err());
    }
}
