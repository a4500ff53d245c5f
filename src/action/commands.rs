//! Workflow commands (`::error file=…::message`, `::add-mask::…`, groups) and their
//! human-readable twin for terminals.
//!
//! The runner parses every stdout line: a line whose trimmed start is `::` is a v2 command, and
//! failing that any line containing `##[` is tried as a legacy v1 command. So data we print —
//! artifact references, registry error bodies — could inject commands (mask values, fake
//! annotations) unless escaped. Command data and properties are escaped exactly as the runner
//! unescapes them; plain log lines that look like commands are fenced with `::stop-commands::`
//! and a random token.

use std::io::{self, Write};

use super::secrets::Secrets;

/// Escape command data: `%`, CR and LF (the runner unescapes these three only).
pub fn escape_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// Escape a command property value: as data, plus `:` (ends the property list) and `,`
/// (separates properties).
pub fn escape_property(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' => out.push_str("%3A"),
            ',' => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

/// Where an annotation points. Every field is optional; the runner ignores columns without a
/// line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnotationProps {
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<u64>,
    pub end_line: Option<u64>,
    pub col: Option<u64>,
    pub end_column: Option<u64>,
}

impl AnnotationProps {
    /// The `key=value,…` list in the runner's property names, values escaped.
    fn to_command_properties(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = &self.title {
            parts.push(format!("title={}", escape_property(v)));
        }
        if let Some(v) = &self.file {
            parts.push(format!("file={}", escape_property(v)));
        }
        if let Some(v) = self.line {
            parts.push(format!("line={v}"));
        }
        if let Some(v) = self.end_line {
            parts.push(format!("endLine={v}"));
        }
        if let Some(v) = self.col {
            parts.push(format!("col={v}"));
        }
        if let Some(v) = self.end_column {
            parts.push(format!("endColumn={v}"));
        }
        parts.join(",")
    }

    /// `file:line:col` (as much of it as is known) for terminal messages.
    fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        let mut s = file.to_string();
        if let Some(line) = self.line {
            s.push_str(&format!(":{line}"));
            if let Some(col) = self.col {
                s.push_str(&format!(":{col}"));
            }
        }
        Some(s)
    }
}

/// Whether output goes to the Actions runner (workflow commands on stdout) or to a person
/// (plain text on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Action,
    Human,
}

impl Mode {
    /// Action mode when the runner's `GITHUB_ACTIONS=true` is present.
    pub fn detect(env: impl IntoIterator<Item = (String, String)>) -> Mode {
        let on_runner = env
            .into_iter()
            .any(|(k, v)| k == "GITHUB_ACTIONS" && v == "true");
        if on_runner {
            Mode::Action
        } else {
            Mode::Human
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Error,
    Warning,
    Notice,
}

impl Severity {
    fn command(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }
}

/// Writes workflow commands (action mode) or plain text (human mode) to any writer, so tests
/// capture exactly what the runner would see. Every message is passed through the secrets
/// registry first, so a secret registered here is never printed, whoever built the message.
pub struct Commands<W: Write> {
    out: W,
    mode: Mode,
    verbose: bool,
    secrets: Secrets,
}

impl Commands<Box<dyn Write + Send>> {
    /// Stdout in action mode (the runner reads commands there), stderr otherwise (stdout stays
    /// free for `--output json`).
    pub fn standard(mode: Mode) -> Self {
        let out: Box<dyn Write + Send> = match mode {
            Mode::Action => Box::new(io::stdout()),
            Mode::Human => Box::new(io::stderr()),
        };
        Commands::new(out, mode)
    }
}

impl<W: Write> Commands<W> {
    pub fn new(out: W, mode: Mode) -> Self {
        Commands {
            out,
            mode,
            verbose: false,
            secrets: Secrets::default(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Show debug lines in human mode (action mode always emits `::debug::`, which the runner
    /// shows only when step debug logging is on).
    pub fn set_verbose(&mut self, verbose: bool) {
        self.verbose = verbose;
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Replace registered secrets in `s` with `***`.
    pub fn redact(&self, s: &str) -> String {
        self.secrets.redact(s)
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Register a secret for redaction and, in action mode, mask it in the runner's log.
    /// Registering the same value twice emits nothing the second time.
    pub fn register_secret(&mut self, secret: &str) -> io::Result<()> {
        if self.secrets.register(secret) {
            self.add_mask(secret)?;
        }
        Ok(())
    }

    /// `::add-mask::` for each non-empty line of `secret` (the runner masks line by line, so a
    /// PEM key masked only as a whole would still leak line by line) and for the whole trimmed
    /// value. Human mode: nothing to mask.
    pub fn add_mask(&mut self, secret: &str) -> io::Result<()> {
        if self.mode != Mode::Action {
            return Ok(());
        }
        for value in mask_values(secret) {
            writeln!(self.out, "::add-mask::{}", escape_data(&value))?;
        }
        self.out.flush()
    }

    /// Start a collapsible group in the log.
    pub fn group(&mut self, title: &str) -> io::Result<()> {
        let title = self.secrets.redact(title);
        match self.mode {
            Mode::Action => writeln!(self.out, "::group::{}", escape_data(&title))?,
            Mode::Human => writeln!(self.out, "{title}")?,
        }
        self.out.flush()
    }

    pub fn end_group(&mut self) -> io::Result<()> {
        if self.mode == Mode::Action {
            writeln!(self.out, "::endgroup::")?;
            self.out.flush()?;
        }
        Ok(())
    }

    pub fn error(&mut self, message: &str, props: &AnnotationProps) -> io::Result<()> {
        self.annotate(Severity::Error, message, props)
    }

    pub fn warning(&mut self, message: &str, props: &AnnotationProps) -> io::Result<()> {
        self.annotate(Severity::Warning, message, props)
    }

    pub fn notice(&mut self, message: &str, props: &AnnotationProps) -> io::Result<()> {
        self.annotate(Severity::Notice, message, props)
    }

    pub fn debug(&mut self, message: &str) -> io::Result<()> {
        let message = self.secrets.redact(message);
        match self.mode {
            Mode::Action => writeln!(self.out, "::debug::{}", escape_data(&message))?,
            Mode::Human if self.verbose => writeln!(self.out, "debug: {message}")?,
            Mode::Human => return Ok(()),
        }
        self.out.flush()
    }

    /// A plain log line. In action mode, text that the runner would take for a command is
    /// fenced with `::stop-commands::` so it is printed, not executed.
    pub fn info(&mut self, message: &str) -> io::Result<()> {
        let message = self.secrets.redact(message);
        if self.mode == Mode::Action && message.lines().any(looks_like_command) {
            let token = random_token();
            writeln!(self.out, "::stop-commands::{token}")?;
            writeln!(self.out, "{message}")?;
            writeln!(self.out, "::{token}::")?;
        } else {
            writeln!(self.out, "{message}")?;
        }
        self.out.flush()
    }

    fn annotate(
        &mut self,
        severity: Severity,
        message: &str,
        props: &AnnotationProps,
    ) -> io::Result<()> {
        let message = self.secrets.redact(message);
        let props = AnnotationProps {
            title: props.title.as_deref().map(|t| self.secrets.redact(t)),
            file: props.file.as_deref().map(|f| self.secrets.redact(f)),
            ..props.clone()
        };
        match self.mode {
            Mode::Action => {
                let p = props.to_command_properties();
                let sep = if p.is_empty() { "" } else { " " };
                writeln!(
                    self.out,
                    "::{}{sep}{p}::{}",
                    severity.command(),
                    escape_data(&message)
                )?;
            }
            Mode::Human => {
                let mut line = format!("{}: ", severity.command());
                if let Some(loc) = props.location() {
                    line.push_str(&loc);
                    line.push_str(": ");
                }
                if let Some(title) = &props.title {
                    line.push_str(title);
                    line.push_str(": ");
                }
                line.push_str(&message);
                writeln!(self.out, "{line}")?;
            }
        }
        self.out.flush()
    }
}

/// The values to mask for one secret: each non-empty trimmed line, then the whole trimmed value
/// when it differs from all of them. Order is stable so output is testable.
pub fn mask_values(secret: &str) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for line in secret.split('\n') {
        let line = line.trim();
        if !line.is_empty() && !values.iter().any(|v| v == line) {
            values.push(line.to_string());
        }
    }
    let whole = secret.trim();
    if !whole.is_empty() && !values.iter().any(|v| v == whole) {
        values.push(whole.to_string());
    }
    values
}

/// Would the runner parse this log line as a command (v2 `::` at trimmed start, or v1 `##[`
/// anywhere)?
fn looks_like_command(line: &str) -> bool {
    line.trim_start().starts_with("::") || line.contains("##[")
}

/// 128 random bits as hex: unguessable by whoever wrote the text being fenced.
pub(crate) fn random_token() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random generator failed");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action() -> Commands<Vec<u8>> {
        Commands::new(Vec::new(), Mode::Action)
    }

    fn human() -> Commands<Vec<u8>> {
        Commands::new(Vec::new(), Mode::Human)
    }

    fn text(c: Commands<Vec<u8>>) -> String {
        String::from_utf8(c.into_inner()).unwrap()
    }

    /// The runner's unescaping, written independently to check that ours round-trips.
    fn unescape(s: &str, property: bool) -> String {
        let mut s = s.replace("%0D", "\r").replace("%0A", "\n");
        if property {
            s = s.replace("%3A", ":").replace("%2C", ",");
        }
        s.replace("%25", "%")
    }

    #[test]
    fn data_escaping_table() {
        let cases = [
            ("plain", "plain"),
            ("100%", "100%25"),
            ("a\nb", "a%0Ab"),
            ("a\r\nb", "a%0D%0Ab"),
            ("%0A", "%250A"),
            ("key: a, b", "key: a, b"),
            ("ünïcødé ✓ 签名", "ünïcødé ✓ 签名"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(escape_data(input), want, "input {input:?}");
            assert_eq!(unescape(&escape_data(input), false), input);
        }
    }

    #[test]
    fn property_escaping_table() {
        let cases = [
            ("src/main.rs", "src/main.rs"),
            ("C:\\x", "C%3A\\x"),
            ("a,b", "a%2Cb"),
            ("a:b,c%d\re\nf", "a%3Ab%2Cc%25d%0De%0Af"),
            ("%3A", "%253A"),
            ("ünïcødé: ✓", "ünïcødé%3A ✓"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_property(input), want, "input {input:?}");
            assert_eq!(unescape(&escape_property(input), true), input);
        }
    }

    #[test]
    fn annotation_with_all_properties() {
        let mut c = action();
        let props = AnnotationProps {
            title: Some("Bad: sig, really".into()),
            file: Some(".github/workflows/a,b.yml".into()),
            line: Some(3),
            end_line: Some(4),
            col: Some(5),
            end_column: Some(6),
        };
        c.error("line one\nline two 100%", &props).unwrap();
        assert_eq!(
            text(c),
            "::error title=Bad%3A sig%2C really,file=.github/workflows/a%2Cb.yml,line=3,\
             endLine=4,col=5,endColumn=6::line one%0Aline two 100%25\n"
        );
    }

    #[test]
    fn annotations_without_properties() {
        let mut c = action();
        c.warning("careful", &AnnotationProps::default()).unwrap();
        c.notice("::add-mask::x", &AnnotationProps::default())
            .unwrap();
        assert_eq!(text(c), "::warning::careful\n::notice::::add-mask::x\n");
    }

    #[test]
    fn human_mode_prints_plain_text() {
        let mut c = human();
        let props = AnnotationProps {
            file: Some("a.yml".into()),
            line: Some(2),
            col: Some(7),
            title: Some("Policy".into()),
            ..Default::default()
        };
        c.error("bad 100%", &props).unwrap();
        c.warning("hmm", &AnnotationProps::default()).unwrap();
        c.add_mask("secret").unwrap();
        c.group("Signing").unwrap();
        c.end_group().unwrap();
        c.debug("hidden").unwrap();
        assert_eq!(
            text(c),
            "error: a.yml:2:7: Policy: bad 100%\nwarning: hmm\nSigning\n"
        );
        let mut c = human();
        c.set_verbose(true);
        c.debug("shown").unwrap();
        assert_eq!(text(c), "debug: shown\n");
    }

    #[test]
    fn groups_and_debug_in_action_mode() {
        let mut c = action();
        c.group("Sign a\nb").unwrap();
        c.debug("50%").unwrap();
        c.end_group().unwrap();
        assert_eq!(
            text(c),
            "::group::Sign a%0Ab\n::debug::50%25\n::endgroup::\n"
        );
    }

    #[test]
    fn multi_line_pem_masks_every_line_and_the_whole() {
        let pem =
            "-----BEGIN PRIVATE KEY-----\r\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\r\n\
                   abcdEFGH\r\n-----END PRIVATE KEY-----\r\n";
        let mut c = action();
        c.add_mask(pem).unwrap();
        let out = text(c);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            vec![
                "::add-mask::-----BEGIN PRIVATE KEY-----",
                "::add-mask::MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg",
                "::add-mask::abcdEFGH",
                "::add-mask::-----END PRIVATE KEY-----",
                "::add-mask::-----BEGIN PRIVATE KEY-----%0D%0AMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\
                 %0D%0AabcdEFGH%0D%0A-----END PRIVATE KEY-----",
            ]
        );
    }

    #[test]
    fn single_line_secret_masked_once_and_registered_once() {
        let mut c = action();
        c.register_secret("  hunter22  \n").unwrap();
        c.register_secret("  hunter22  \n").unwrap();
        c.add_mask("").unwrap();
        c.add_mask(" \n \n").unwrap();
        assert_eq!(text(c), "::add-mask::hunter22\n");
    }

    #[test]
    fn messages_are_redacted() {
        let mut c = action();
        c.register_secret("s3cr3t-token").unwrap();
        let props = AnnotationProps {
            title: Some("uses s3cr3t-token".into()),
            ..Default::default()
        };
        c.error("auth with s3cr3t-token failed", &props).unwrap();
        c.info("token=s3cr3t-token").unwrap();
        c.group("s3cr3t-token").unwrap();
        assert_eq!(
            text(c),
            "::add-mask::s3cr3t-token\n::error title=uses ***::auth with *** failed\n\
             token=***\n::group::***\n"
        );
        let mut c = human();
        c.register_secret("s3cr3t-token").unwrap();
        c.warning("s3cr3t-token", &AnnotationProps::default())
            .unwrap();
        assert_eq!(text(c), "warning: ***\n");
    }

    #[test]
    fn info_fences_text_that_looks_like_commands() {
        let mut c = action();
        c.info("pushed ghcr.io/a/b:v1").unwrap();
        assert_eq!(text(c), "pushed ghcr.io/a/b:v1\n");

        for hostile in [
            "  ::add-mask::everything",
            "x\n::error::fake",
            "see ##[error]x",
        ] {
            let mut c = action();
            c.info(hostile).unwrap();
            let out = text(c);
            let lines: Vec<&str> = out.lines().collect();
            let token = lines[0].strip_prefix("::stop-commands::").unwrap();
            assert_eq!(token.len(), 32);
            assert!(token.chars().all(|ch| ch.is_ascii_hexdigit()));
            assert_eq!(lines[1..lines.len() - 1].join("\n"), hostile);
            assert_eq!(*lines.last().unwrap(), format!("::{token}::"));
        }
        // Human mode prints as is: no runner reads it.
        let mut c = human();
        c.info("::error::x").unwrap();
        assert_eq!(text(c), "::error::x\n");
    }

    /// Command name, properties in order, data.
    type Parsed = (String, Vec<(String, String)>, String);

    /// A line parsed the way the runner parses v2 commands: trim the start, `::`, command info up
    /// to the next `::`, name up to the first space, properties split on `,` then on the first
    /// `=`, then both unescaped.
    fn parse_v2(line: &str) -> Option<Parsed> {
        let line = line.trim_start();
        let rest = line.strip_prefix("::")?;
        let end = rest.find("::")?;
        let info = &rest[..end];
        let data = unescape(&rest[end + 2..], false);
        let (name, props) = match info.find(' ') {
            Some(i) => (&info[..i], info[i + 1..].trim()),
            None => (info, ""),
        };
        let props = props
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                (!k.is_empty() && !v.is_empty()).then(|| (k.to_string(), unescape(v, true)))
            })
            .collect();
        Some((name.to_string(), props, data))
    }

    #[test]
    fn hostile_values_parse_back_exactly() {
        let hostile = [
            "::error::injected",
            "a::b,c=d:e%0A\r\nf",
            "title=x,file=y",
            "%25%3A%2C literal escapes",
            "ünïcødé ✓ 签名 ::",
        ];
        for h in hostile {
            let mut c = action();
            let props = AnnotationProps {
                title: Some(h.to_string()),
                file: Some(format!("dir/{h}")),
                line: Some(1),
                ..Default::default()
            };
            c.warning(h, &props).unwrap();
            let out = text(c);
            // One physical line, so nothing after a newline can be read as another command.
            assert_eq!(out.matches('\n').count(), 1, "{out:?}");
            let (name, props, data) = parse_v2(out.trim_end_matches('\n')).unwrap();
            assert_eq!(name, "warning");
            assert_eq!(
                props,
                vec![
                    ("title".to_string(), h.to_string()),
                    ("file".to_string(), format!("dir/{h}")),
                    ("line".to_string(), "1".to_string()),
                ],
                "{out:?}"
            );
            assert_eq!(data, h);

            let mut c = action();
            c.add_mask(h).unwrap();
            c.group(h).unwrap();
            let out = text(c);
            let parsed: Vec<_> = out.lines().map(|l| parse_v2(l).unwrap()).collect();
            let last = parsed.last().unwrap();
            assert_eq!((last.0.as_str(), last.2.as_str()), ("group", h));
            let masks: Vec<String> = parsed[..parsed.len() - 1]
                .iter()
                .map(|(n, p, d)| {
                    assert_eq!(n, "add-mask");
                    assert!(p.is_empty());
                    d.clone()
                })
                .collect();
            assert_eq!(masks, mask_values(h));
            assert_eq!(masks.last().unwrap(), h.trim());
        }
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn mode_detection() {
        let env = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            Mode::detect(env(&[("GITHUB_ACTIONS", "true")])),
            Mode::Action
        );
        assert_eq!(
            Mode::detect(env(&[("GITHUB_ACTIONS", "false")])),
            Mode::Human
        );
        assert_eq!(Mode::detect(env(&[])), Mode::Human);
    }
}
