//! Markdown for the job summary.
//!
//! Values in the summary come from users and registries (references, certificate subjects,
//! error messages), so each is escaped for the place it goes: plain text has Markdown and HTML
//! punctuation backslash-escaped, code spans get a fence longer than any backtick run inside, and
//! in table cells `|` is escaped and newlines become `<br>` so a value cannot break the table.

use std::fmt::Write as _;

use sign_action::oci::Storage;
use sign_action::policy::level::Check;
use sign_action::sign::SignReport;
use sign_action::verify::{ArtifactVerification, CheckStatus, Enforcement};
use sign_action::x509::fulcio::KeylessIdentity;

/// Characters that can start Markdown or HTML constructs inline. Escaping them with `\` is valid
/// CommonMark for any ASCII punctuation and renders the character itself.
const ESCAPED: &[char] = &['\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '&', '!'];

/// Plain text for inline Markdown (a table cell, a paragraph): punctuation escaped, line breaks
/// as `<br>`.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    for c in s.chars() {
        match c {
            '\n' => out.push_str("<br>"),
            c if ESCAPED.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A code span showing `s` literally. Backslashes do not escape inside code spans, so backticks
/// in `s` are handled by a longer fence instead; line breaks become spaces (as CommonMark does).
/// Empty input gives an empty string (there is no empty code span).
pub fn code(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let s = s.replace("\r\n", " ").replace(['\r', '\n'], " ");
    let longest_run = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    // A leading or trailing backtick would merge with the fence; CommonMark strips one space on
    // each side when both are present.
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// One table cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Escaped with [`text`].
    Text(String),
    /// Shown as a code span ([`code`]).
    Code(String),
}

impl Cell {
    fn render(&self) -> String {
        match self {
            Cell::Text(s) => text(s),
            // GFM splits cells on `|` before parsing code spans, and honours `\|` even inside
            // them, so the pipe is escaped here and not by `code`.
            Cell::Code(s) => code(s).replace('|', "\\|"),
        }
    }
}

/// A GFM table. Rows shorter than the header are padded with empty cells; longer rows are a
/// programming error and are cut to the header width rather than producing a broken table.
pub fn render_table(headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut out = String::new();
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(headers.iter().map(|h| text(h)).collect()));
    out.push_str(&line(headers.iter().map(|_| "---".to_string()).collect()));
    for row in rows {
        let mut cells: Vec<String> = row.iter().take(headers.len()).map(Cell::render).collect();
        cells.resize(headers.len(), String::new());
        out.push_str(&line(cells));
    }
    out
}

/// `sha256:0123456789ab…` from a full digest; other strings unchanged.
fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 && hex.is_ascii() => format!("{alg}:{}…", &hex[..12]),
        _ => d.to_string(),
    }
}

fn short_hex(h: &str) -> String {
    if h.len() > 16 && h.is_ascii() {
        format!("{}…", &h[..16])
    } else {
        h.to_string()
    }
}

fn format_name(f: &str) -> String {
    match f {
        "jws" => "JWS".into(),
        "cose" => "COSE".into(),
        other => other.into(),
    }
}

fn storage_name(s: Storage) -> &'static str {
    match s {
        Storage::ReferrersApi => "Referrers API",
        Storage::TagSchema => "Referrers tag schema",
        Storage::OciLayout => "OCI layout",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The job summary of a signing run: counts, a table of signed artifacts with short values, the
/// full digests and fingerprints in a collapsed section, and a table of failures with reasons.
///
/// Error strings are shown as given: redact them ([`super::secrets::Secrets::redact`]) before
/// building the report, since escaping may change how a secret is spelt.
pub fn render_sign_summary(report: &SignReport) -> String {
    let ok = report.signatures.len();
    let failed = report.failures.len();
    let mut out = String::from("### Notary Project signatures\n\n");
    let _ = match (ok, failed) {
        (0, 0) => writeln!(out, "No artifacts were given."),
        (_, 0) => writeln!(out, "Signed {}.", plural(ok, "artifact", "artifacts")),
        _ => writeln!(
            out,
            "Signed {ok} of {}; {failed} failed.",
            plural(ok + failed, "artifact", "artifacts")
        ),
    };

    if ok > 0 {
        out.push('\n');
        let rows: Vec<Vec<Cell>> = report
            .signatures
            .iter()
            .map(|s| {
                vec![
                    Cell::Code(s.reference.clone()),
                    Cell::Code(short_digest(&s.digest)),
                    Cell::Text(s.signer_subject.clone()),
                    Cell::Code(short_hex(&s.certificate_fingerprint)),
                    Cell::Text(format_name(&s.signature_format)),
                    Cell::Text(storage_name(s.storage).to_string()),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &[
                "Artifact",
                "Digest",
                "Signer subject",
                "Certificate fingerprint (SHA-256)",
                "Format",
                "Stored as",
            ],
            &rows,
        ));

        out.push_str("\n<details><summary>Full digests</summary>\n\n");
        let rows: Vec<Vec<Cell>> = report
            .signatures
            .iter()
            .map(|s| {
                vec![
                    Cell::Code(s.reference.clone()),
                    Cell::Code(s.digest.clone()),
                    Cell::Code(s.signature_digest.clone()),
                    Cell::Code(s.certificate_fingerprint.clone()),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &[
                "Artifact",
                "Digest",
                "Signature manifest",
                "Certificate fingerprint (SHA-256)",
            ],
            &rows,
        ));
        out.push_str("\n</details>\n");
    }

    let keyless: Vec<Vec<Cell>> = report
        .signatures
        .iter()
        .filter_map(|s| {
            s.keyless_identity
                .as_ref()
                .map(|id| keyless_row(&s.reference, id))
        })
        .collect();
    if !keyless.is_empty() {
        out.push_str("\n#### Keyless signer identity\n\n");
        out.push_str(&render_table(&KEYLESS_HEADERS, &keyless));
    }

    if failed > 0 {
        let _ = writeln!(out, "\n#### Failed ({failed})\n");
        let rows: Vec<Vec<Cell>> = report
            .failures
            .iter()
            .map(|f| vec![Cell::Code(f.reference.clone()), Cell::Text(f.error.clone())])
            .collect();
        out.push_str(&render_table(&["Artifact", "Reason"], &rows));
    }
    out
}

const KEYLESS_HEADERS: [&str; 5] = [
    "Artifact",
    "Workflow (SAN URI)",
    "Repository",
    "Ref",
    "OIDC issuer",
];

/// What a keyless certificate binds, as one table row.
fn keyless_row(reference: &str, id: &KeylessIdentity) -> Vec<Cell> {
    let uri = id
        .san_uris
        .first()
        .or(id.san_emails.first())
        .cloned()
        .unwrap_or_default();
    vec![
        Cell::Code(reference.to_string()),
        Cell::Code(uri),
        Cell::Code(id.repository.clone().unwrap_or_default()),
        Cell::Code(id.git_ref.clone().unwrap_or_default()),
        Cell::Code(id.issuer.clone().unwrap_or_default()),
    ]
}

/// The job summary of a verification run: one row per artifact with a ✓/✗/⚠ column per
/// check (✓ passed, ✗ failed where enforced, ⚠ failed but logged or not performed, – skipped),
/// then the reasons of every failure.
pub fn render_verify_summary(results: &[ArtifactVerification]) -> String {
    let ok = results.iter().filter(|r| r.verified).count();
    let mut out = String::from("### Notary Project verification\n\n");
    let _ = writeln!(
        out,
        "{ok} of {} verified.",
        plural(results.len(), "artifact", "artifacts")
    );
    out.push('\n');
    let checks = Check::ALL;
    let mut headers = vec!["Artifact", "Digest", "Result", "Signer"];
    headers.extend(checks.iter().map(|c| c.as_str()));
    headers.push("Timestamp");
    let rows: Vec<Vec<Cell>> = results
        .iter()
        .map(|r| {
            let sig = r.signature.as_ref().or(r.failed_signatures.first());
            let mut row = vec![
                Cell::Code(r.reference.clone()),
                Cell::Code(r.digest.as_deref().map(short_digest).unwrap_or_default()),
                Cell::Text(
                    if r.verified {
                        "✓ verified"
                    } else {
                        "✗ failed"
                    }
                    .to_string(),
                ),
                Cell::Text(
                    sig.and_then(|s| s.signer_subject.clone().filter(|s| !s.is_empty()))
                        .or_else(|| {
                            sig.and_then(|s| s.keyless_identity.as_ref())
                                .map(KeylessIdentity::describe)
                        })
                        .unwrap_or_default(),
                ),
            ];
            for check in checks {
                let mark = sig
                    .and_then(|s| s.checks.iter().find(|c| c.check == check.as_str()))
                    .map(|c| match (c.status, c.enforcement) {
                        (CheckStatus::Passed, _) => "✓",
                        (CheckStatus::Skipped, _) | (_, Enforcement::Skipped) => "–",
                        (CheckStatus::Failed, Enforcement::Enforced) => "✗",
                        (CheckStatus::NotPerformed, Enforcement::Enforced) => "✗",
                        _ => "⚠",
                    })
                    .unwrap_or(if r.verified { "–" } else { "" });
                row.push(Cell::Text(mark.to_string()));
            }
            row.push(Cell::Text(
                sig.and_then(|s| s.timestamp.as_ref())
                    .map(|t| {
                        format!(
                            "{} ({} to {}) by {}",
                            t.gen_time, t.range_start, t.range_end, t.tsa_subject
                        )
                    })
                    .unwrap_or_default(),
            ));
            row
        })
        .collect();
    out.push_str(&render_table(&headers, &rows));
    let problems: Vec<Vec<Cell>> = results
        .iter()
        .flat_map(|r| {
            let mut lines = Vec::new();
            if let Some(e) = &r.error {
                lines.push(vec![Cell::Code(r.reference.clone()), Cell::Text(e.clone())]);
            }
            for w in &r.warnings {
                lines.push(vec![
                    Cell::Code(r.reference.clone()),
                    Cell::Text(format!("warning: {w}")),
                ]);
            }
            lines
        })
        .collect();
    let keyless: Vec<Vec<Cell>> = results
        .iter()
        .filter_map(|r| {
            r.signature
                .as_ref()
                .and_then(|s| s.keyless_identity.as_ref())
                .map(|id| keyless_row(&r.reference, id))
        })
        .collect();
    if !keyless.is_empty() {
        out.push_str("\n#### Keyless signer identity\n\n");
        out.push_str(&render_table(&KEYLESS_HEADERS, &keyless));
    }
    if !problems.is_empty() {
        out.push_str("\n#### Details\n\n");
        out.push_str(&render_table(&["Artifact", "Reason"], &problems));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sign_action::sign::{SignFailure, SignedArtifact};

    #[test]
    fn text_escaping_table() {
        let cases = [
            ("plain words, 1.2", "plain words, 1.2"),
            ("a|b", "a\\|b"),
            (
                "line1\nline2\r\nline3\rline4",
                "line1<br>line2<br>line3<br>line4",
            ),
            ("`code`", "\\`code\\`"),
            ("<script>&amp;", "\\<script\\>\\&amp;"),
            (
                "*bold* _it_ [x](y) ~~s~~ ![i]",
                "\\*bold\\* \\_it\\_ \\[x\\](y) \\~\\~s\\~\\~ \\!\\[i\\]",
            ),
            ("back\\slash", "back\\\\slash"),
            ("CN=Ünïcødé ✓,O=签名", "CN=Ünïcødé ✓,O=签名"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn code_span_table() {
        let cases = [
            ("sha256:abc", "`sha256:abc`"),
            ("a`b", "``a`b``"),
            ("a``b`c", "```a``b`c```"),
            ("`start", "`` `start ``"),
            ("end`", "`` end` ``"),
            ("two\nlines", "`two lines`"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(code(input), want, "input {input:?}");
        }
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        let t = render_table(
            &["A|B", "C"],
            &[
                vec![Cell::Code("x|y".into()), Cell::Text("p\nq|r".into())],
                vec![Cell::Text("only one".into())],
                vec![
                    Cell::Text("1".into()),
                    Cell::Text("2".into()),
                    Cell::Text("dropped".into()),
                ],
            ],
        );
        assert_eq!(
            t,
            "| A\\|B | C |\n\
             | --- | --- |\n\
             | `x\\|y` | p<br>q\\|r |\n\
             | only one |  |\n\
             | 1 | 2 |\n"
        );
        // Every row has exactly as many unescaped pipes as the header.
        let pipes = |l: &str| l.replace("\\|", "").matches('|').count();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines.iter().all(|l| pipes(l) == pipes(lines[0])));
    }

    fn signed(reference: &str, storage: Storage, format: &str) -> SignedArtifact {
        SignedArtifact {
            platform: None,
            reference: reference.into(),
            digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                .into(),
            signature_digest:
                "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210".into(),
            signature_format: format.into(),
            storage,
            signer_subject: "CN=signer|test,O=Notary,C=US".into(),
            certificate_fingerprint:
                "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899".into(),
            keyless_identity: None,
            index_retries: 0,
        }
    }

    #[test]
    fn summary_all_signed() {
        let report = SignReport {
            signatures: vec![
                signed("ghcr.io/acme/app:v1", Storage::ReferrersApi, "jws"),
                signed("localhost:5000/x@sha256:01", Storage::TagSchema, "cose"),
            ],
            failures: vec![],
        };
        let want = "\
### Notary Project signatures

Signed 2 artifacts.

| Artifact | Digest | Signer subject | Certificate fingerprint (SHA-256) | Format | Stored as |
| --- | --- | --- | --- | --- | --- |
| `ghcr.io/acme/app:v1` | `sha256:0123456789ab…` | CN=signer\\|test,O=Notary,C=US | `aabbccddeeff0011…` | JWS | Referrers API |
| `localhost:5000/x@sha256:01` | `sha256:0123456789ab…` | CN=signer\\|test,O=Notary,C=US | `aabbccddeeff0011…` | COSE | Referrers tag schema |

<details><summary>Full digests</summary>

| Artifact | Digest | Signature manifest | Certificate fingerprint (SHA-256) |
| --- | --- | --- | --- |
| `ghcr.io/acme/app:v1` | `sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef` | `sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210` | `aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899` |
| `localhost:5000/x@sha256:01` | `sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef` | `sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210` | `aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899` |

</details>
";
        assert_eq!(render_sign_summary(&report), want);
    }

    #[test]
    fn summary_with_failures() {
        let report = SignReport {
            signatures: vec![signed("oci-layout:./out:v1", Storage::OciLayout, "jws")],
            failures: vec![SignFailure {
                reference: "ghcr.io/acme/private:v1".into(),
                error: "registry answered 401 <Unauthorized>\ncheck `registry-password` | creds"
                    .into(),
            }],
        };
        let got = render_sign_summary(&report);
        assert!(got.starts_with(
            "### Notary Project signatures\n\nSigned 1 of 2 artifacts; 1 failed.\n\n"
        ));
        assert!(got.contains("| `oci-layout:./out:v1` | `sha256:0123456789ab…` |"));
        assert!(got.contains("| JWS | OCI layout |\n"));
        assert!(got.ends_with(
            "</details>\n\n#### Failed (1)\n\n\
             | Artifact | Reason |\n\
             | --- | --- |\n\
             | `ghcr.io/acme/private:v1` | registry answered 401 \\<Unauthorized\\><br>check \
             \\`registry-password\\` \\| creds |\n"
        ));
    }

    #[test]
    fn summary_only_failures_and_empty() {
        let report = SignReport {
            signatures: vec![],
            failures: vec![SignFailure {
                reference: "a".into(),
                error: "boom".into(),
            }],
        };
        assert_eq!(
            render_sign_summary(&report),
            "### Notary Project signatures\n\nSigned 0 of 1 artifact; 1 failed.\n\n\
             #### Failed (1)\n\n| Artifact | Reason |\n| --- | --- |\n| `a` | boom |\n"
        );
        assert_eq!(
            render_sign_summary(&SignReport::default()),
            "### Notary Project signatures\n\nNo artifacts were given.\n"
        );
    }

    #[test]
    fn short_forms() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab…"
        );
        assert_eq!(short_digest("sha256:0123"), "sha256:0123");
        assert_eq!(short_digest("weird"), "weird");
        assert_eq!(short_digest("x:ééééééééééééé"), "x:ééééééééééééé");
        assert_eq!(short_hex("0123456789abcdef0"), "0123456789abcdef…");
        assert_eq!(short_hex("0123"), "0123");
        assert_eq!(format_name("other"), "other");
    }
}
