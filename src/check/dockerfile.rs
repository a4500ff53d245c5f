//! Image references in Dockerfiles: `FROM` (after `--platform` and other flags, skipping
//! `scratch` and earlier stage names) and `COPY --from=IMAGE`, with global `ARG` defaults
//! substituted.
//!
//! Hand-written: there is no maintained Rust Dockerfile parser that keeps positions through
//! line continuations, and what is needed is small: parser directives (`# escape=`), comment
//! lines (also inside continuations), continuations, and the shell-style substitutions BuildKit
//! applies to `FROM` (`$X`, `${X}`, `${X:-default}`, `${X-default}`, `${X:+alt}`, `${X+alt}`).
//! Each character of a logical instruction keeps the line and column it came from, so a
//! reference found on a continued line is reported where it is written.

use std::collections::HashMap;

use super::{ImageRef, RefKind, Skipped};

/// One character of a logical instruction and where it was written (1-based).
#[derive(Debug, Clone, Copy)]
struct Ch {
    c: char,
    line: usize,
    column: usize,
}

/// An instruction with its source positions.
struct Instruction {
    /// Upper-cased keyword.
    keyword: String,
    /// The arguments after the keyword, per character.
    args: Vec<Ch>,
}

/// A whitespace-separated word of the arguments, with where it starts.
struct Word {
    text: String,
    line: usize,
    column: usize,
}

fn words(args: &[Ch]) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current: Option<Word> = None;
    for ch in args {
        if ch.c.is_whitespace() {
            if let Some(w) = current.take() {
                out.push(w);
            }
        } else {
            match &mut current {
                Some(w) => w.text.push(ch.c),
                None => {
                    current = Some(Word {
                        text: ch.c.to_string(),
                        line: ch.line,
                        column: ch.column,
                    })
                }
            }
        }
    }
    out.extend(current);
    out
}

/// The escape character from a leading `# escape=` directive (default `\`).
fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let t = line.trim();
        let Some(directive) = t.strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = directive.split_once('=') else {
            break;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "escape" => {
                if value.trim() == "`" {
                    return '`';
                }
                return '\\';
            }
            // Other directives (`syntax`, `check`) may come first.
            n if n.chars().all(|c| c.is_ascii_alphanumeric()) => continue,
            _ => break,
        }
    }
    '\\'
}

/// Split a Dockerfile into logical instructions.
fn instructions(text: &str) -> Vec<Instruction> {
    let escape = escape_char(text);
    let mut out = Vec::new();
    let mut current: Vec<Ch> = Vec::new();
    let mut continuing = false;
    // Heredoc bodies still to skip (`RUN <<EOF` … `EOF`): their lines are not instructions.
    let mut heredocs: std::collections::VecDeque<(String, bool)> = Default::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some((delimiter, strip_tabs)) = heredocs.front() {
            let line = if *strip_tabs {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if line == delimiter {
                heredocs.pop_front();
            }
            continue;
        }
        let trimmed = raw.trim_start();
        // Comment lines are dropped wherever they are, also inside a continuation; so are
        // empty lines inside one.
        if trimmed.starts_with('#') || (continuing && trimmed.is_empty()) {
            continue;
        }
        let chars: Vec<Ch> = raw
            .chars()
            .enumerate()
            .map(|(col, c)| Ch {
                c,
                line: line_no,
                column: col + 1,
            })
            .collect();
        let mut end = chars.len();
        while end > 0 && chars[end - 1].c.is_whitespace() {
            end -= 1;
        }
        let continues = end > 0 && chars[end - 1].c == escape;
        if continues {
            end -= 1;
        }
        current.extend_from_slice(&chars[..end]);
        if continues {
            continuing = true;
            // The continuation joins lines with nothing between them; keep words apart where
            // the source had indentation by what the next line brings.
            continue;
        }
        continuing = false;
        if let Some(instruction) = finish(std::mem::take(&mut current)) {
            if matches!(instruction.keyword.as_str(), "RUN" | "COPY" | "ADD") {
                heredocs.extend(heredoc_delimiters(&instruction.args));
            }
            out.push(instruction);
        }
    }
    if let Some(instruction) = finish(current) {
        out.push(instruction);
    }
    out
}

/// The delimiters of the heredocs an instruction opens, in order, with whether leading tabs
/// are stripped before comparing. As BuildKit reads them: a word that is `<<NAME`, `<<-NAME`
/// or `<<"NAME"` (after an optional file descriptor number); `$((1<<2))` is not one.
fn heredoc_delimiters(args: &[Ch]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for w in words(args) {
        let Some(rest) = w
            .text
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .strip_prefix("<<")
        else {
            continue;
        };
        let (strip_tabs, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let name = ['"', '\'']
            .iter()
            .find_map(|q| rest.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)));
        let name = name.unwrap_or(rest);
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((name.to_string(), strip_tabs));
        }
    }
    out
}

fn finish(chars: Vec<Ch>) -> Option<Instruction> {
    let start = chars.iter().position(|c| !c.c.is_whitespace())?;
    let chars = &chars[start..];
    let end = chars
        .iter()
        .position(|c| c.c.is_whitespace())
        .unwrap_or(chars.len());
    let keyword: String = chars[..end].iter().map(|c| c.c).collect();
    Some(Instruction {
        keyword: keyword.to_ascii_uppercase(),
        args: chars[end..].to_vec(),
    })
}

/// Why a substitution could not be made.
#[derive(Debug, PartialEq, Eq)]
enum Unresolved {
    /// A variable with no value and no default.
    Unset(String),
    Syntax,
}

/// Expand `$X`, `${X}`, `${X:-d}`, `${X-d}`, `${X:+a}` and `${X+a}` with `args`. An `ARG`
/// declared without a default is "set" to nothing: only a default we can see resolves.
fn substitute(text: &str, args: &HashMap<String, Option<String>>) -> Result<String, Unresolved> {
    let lookup = |name: &str| args.get(name).cloned().flatten();
    let declared = |name: &str| args.contains_key(name);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if n == '$' {
                    out.push('$');
                    chars.next();
                    continue;
                }
            }
            out.push(c);
            continue;
        }
        if c != '$' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            let mut inner = String::new();
            let mut closed = false;
            let mut depth = 0usize;
            for n in chars.by_ref() {
                match n {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        closed = true;
                        break;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
                inner.push(n);
            }
            if !closed {
                return Err(Unresolved::Syntax);
            }
            let name_end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let (name, op) = inner.split_at(name_end);
            if name.is_empty() {
                return Err(Unresolved::Syntax);
            }
            let value = lookup(name).filter(|v| !v.is_empty());
            let word = |prefix: &str| op.strip_prefix(prefix).map(|w| substitute(w, args));
            let expanded = if op.is_empty() {
                value.ok_or_else(|| Unresolved::Unset(name.to_string()))?
            } else if let Some(default) = word(":-") {
                match value {
                    Some(v) => v,
                    None => default?,
                }
            } else if let Some(default) = word("-") {
                match lookup(name) {
                    Some(v) => v,
                    None if declared(name) => String::new(),
                    None => default?,
                }
            } else if let Some(alt) = word(":+") {
                if value.is_some() {
                    alt?
                } else {
                    String::new()
                }
            } else if let Some(alt) = word("+") {
                if lookup(name).is_some() {
                    alt?
                } else {
                    String::new()
                }
            } else {
                return Err(Unresolved::Syntax);
            };
            out.push_str(&expanded);
        } else {
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                out.push('$');
                continue;
            }
            let value = lookup(&name)
                .filter(|v| !v.is_empty())
                .ok_or(Unresolved::Unset(name))?;
            out.push_str(&value);
        }
    }
    Ok(out)
}

/// `NAME[=VALUE]` pairs of an `ARG` line; quotes around a value are removed.
fn arg_pairs(args: &[Ch]) -> Vec<(String, Option<String>)> {
    words(args)
        .into_iter()
        .map(|w| match w.text.split_once('=') {
            Some((name, value)) => {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(value);
                (name.to_string(), Some(value.to_string()))
            }
            None => (w.text, None),
        })
        .collect()
}

/// Find every image reference in a Dockerfile.
pub(crate) fn scan(file: &str, text: &str) -> (Vec<ImageRef>, Vec<Skipped>) {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    // ARGs before the first FROM are the only ones FROM may use.
    let mut global_args: HashMap<String, Option<String>> = HashMap::new();
    let mut seen_from = false;
    let mut stages: Vec<String> = Vec::new();
    for instruction in instructions(text) {
        match instruction.keyword.as_str() {
            "ARG" if !seen_from => {
                for (name, value) in arg_pairs(&instruction.args) {
                    // A default may use earlier global ARGs.
                    let value = value.map(|v| substitute(&v, &global_args).unwrap_or(v));
                    global_args.insert(name, value);
                }
            }
            "FROM" => {
                seen_from = true;
                let words = words(&instruction.args);
                let mut rest = words.iter().skip_while(|w| w.text.starts_with("--"));
                let Some(image) = rest.next() else {
                    continue;
                };
                let stage_name = match (rest.next(), rest.next()) {
                    (Some(as_kw), Some(name)) if as_kw.text.eq_ignore_ascii_case("as") => {
                        Some(name.text.to_ascii_lowercase())
                    }
                    _ => None,
                };
                // Only earlier stages can be named: `FROM x AS x` pulls the image x.
                let earlier = stages.clone();
                stages.extend(stage_name);
                let skip = |reason: String| Skipped {
                    file: file.to_string(),
                    line: image.line,
                    column: image.column,
                    text: image.text.clone(),
                    reason,
                };
                let resolved = match substitute(&image.text, &global_args) {
                    Ok(r) => r,
                    Err(Unresolved::Unset(name)) => {
                        skipped.push(skip(format!(
                            "build argument {name} has no default here; it is set only at build time"
                        )));
                        continue;
                    }
                    Err(Unresolved::Syntax) => {
                        skipped.push(skip("invalid variable substitution".into()));
                        continue;
                    }
                };
                let lower = resolved.to_ascii_lowercase();
                if lower == "scratch" || earlier.contains(&lower) {
                    continue;
                }
                found.push(ImageRef {
                    file: file.to_string(),
                    line: image.line,
                    column: image.column,
                    reference: resolved,
                    kind: RefKind::DockerfileFrom,
                });
            }
            "COPY" => {
                for w in words(&instruction.args) {
                    let Some(from) = w.text.strip_prefix("--from=") else {
                        if !w.text.starts_with("--") {
                            break;
                        }
                        continue;
                    };
                    let lower = from.to_ascii_lowercase();
                    // A stage name or index, not an image.
                    if stages.contains(&lower) || from.chars().all(|c| c.is_ascii_digit()) {
                        continue;
                    }
                    if from.contains('$') {
                        skipped.push(Skipped {
                            file: file.to_string(),
                            line: w.line,
                            column: w.column + "--from=".len(),
                            text: from.to_string(),
                            reason: "COPY --from with a variable is resolved only at build time"
                                .into(),
                        });
                        continue;
                    }
                    found.push(ImageRef {
                        file: file.to_string(),
                        line: w.line,
                        column: w.column + "--from=".len(),
                        reference: from.to_string(),
                        kind: RefKind::DockerfileCopyFrom,
                    });
                }
            }
            _ => {}
        }
    }
    (found, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<(usize, usize, String)> {
        scan("Dockerfile", text)
            .0
            .into_iter()
            .map(|r| (r.line, r.column, r.reference))
            .collect()
    }

    #[test]
    fn multi_stage_with_args_platform_and_stage_names() {
        let text = "\
# syntax=docker/dockerfile:1
ARG REGISTRY=registry.example
ARG BASE=${REGISTRY}/base:1.0
ARG GO_VERSION
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
RUN go build
FROM ${BASE} as runtime-base
FROM runtime-base
COPY --from=build /out /out
COPY --from=registry.example/tools:3 /bin/tool /bin/
FROM scratch AS final
COPY --from=0 / /
FROM golang:${GO_VERSION:-1.21}-alpine
FROM golang:${GO_VERSION}
";
        assert_eq!(
            refs(text),
            vec![
                (5, 32, "golang:1.22".into()),
                (7, 6, "registry.example/base:1.0".into()),
                (10, 13, "registry.example/tools:3".into()),
                (13, 6, "golang:1.21-alpine".into()),
            ]
        );
        let (_, skipped) = scan("Dockerfile", text);
        assert_eq!(skipped.len(), 1);
        assert_eq!((skipped[0].line, skipped[0].column), (14, 6));
        assert!(skipped[0].reason.contains("GO_VERSION"));
    }

    #[test]
    fn continuations_comments_and_escape_directive() {
        let text = "FROM \\\n  # a comment inside\n\n    alpine:3.19 \\\n  AS base\nfrom base\n";
        assert_eq!(refs(text), vec![(4, 5, "alpine:3.19".into())]);
        let text = "# escape=`\nFROM `\n  debian:12\nRUN dir c:\\\n";
        assert_eq!(refs(text), vec![(3, 3, "debian:12".into())]);
    }

    #[test]
    fn heredoc_bodies_are_not_instructions() {
        let text = "FROM alpine:3 AS a\nRUN echo $((1<<2)) <<<x\nRUN <<EOF\nFROM not-an-image:1\nEOF\nCOPY <<-\"A\" <<B /x\n\tFROM nor-this:1\n\tA\nFROM nor-that:1\nB\nFROM debian:12\n";
        let found: Vec<String> = refs(text).into_iter().map(|r| r.2).collect();
        assert_eq!(found, vec!["alpine:3", "debian:12"]);
    }

    #[test]
    fn args_after_from_do_not_apply_to_from() {
        let text = "FROM alpine:3 AS a\nARG TAG=9\nFROM node:${TAG}\n";
        let (found, skipped) = scan("Dockerfile", text);
        assert_eq!(found.len(), 1);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains("TAG"));
    }

    #[test]
    fn substitution_forms() {
        let mut args = HashMap::new();
        args.insert("A".to_string(), Some("x".to_string()));
        args.insert("E".to_string(), Some(String::new()));
        args.insert("N".to_string(), None);
        let s = |t: &str| substitute(t, &args);
        assert_eq!(s("$A/${A}"), Ok("x/x".into()));
        assert_eq!(s("${E:-d}"), Ok("d".into()));
        assert_eq!(s("${E-d}"), Ok("".into()));
        assert_eq!(s("${U-d}"), Ok("d".into()));
        assert_eq!(s("${N-d}"), Ok("".into()));
        assert_eq!(s("${A:+alt}"), Ok("alt".into()));
        assert_eq!(s("${E:+alt}"), Ok("".into()));
        assert_eq!(s("${U:-${A}y}"), Ok("xy".into()));
        assert_eq!(s("${U}"), Err(Unresolved::Unset("U".into())));
        assert_eq!(s("${A"), Err(Unresolved::Syntax));
        assert_eq!(s("\\$A"), Ok("$A".into()));
    }
}
