//! Redaction of secrets (keys, passwords, tokens) from everything we print.
//!
//! The runner masks `::add-mask::` values in its own log, but only in action mode and only
//! line by line; error messages also reach terminals, JSON output and the step summary. So every
//! secret is registered here and every message is passed through [`Secrets::redact`].

/// Lines of a multi-line secret shorter than this are not redacted on their own: a PEM
/// `-----END…` line is long, but a two-letter line would turn every message into asterisks.
const MIN_LINE_LEN: usize = 4;

/// Registered secrets, as the patterns to replace (longest first, so a whole value is replaced
/// before any of its lines).
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    registered: Vec<String>,
    patterns: Vec<String>,
}

impl Secrets {
    /// Register a secret. Returns false when it was already registered (or is blank), so the
    /// caller masks each secret once.
    pub fn register(&mut self, secret: &str) -> bool {
        if secret.trim().is_empty() || self.registered.iter().any(|s| s == secret) {
            return false;
        }
        self.registered.push(secret.to_string());
        let mut add = |p: &str| {
            if !p.is_empty() && !self.patterns.iter().any(|q| q == p) {
                self.patterns.push(p.to_string());
            }
        };
        add(secret);
        add(secret.trim());
        for line in secret.split('\n') {
            let line = line.trim();
            if line.chars().count() >= MIN_LINE_LEN {
                add(line);
            }
        }
        self.patterns
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        true
    }

    pub fn is_empty(&self) -> bool {
        self.registered.is_empty()
    }

    /// `s` with every registered secret, and every line of one of at least four characters,
    /// replaced by `***`.
    pub fn redact(&self, s: &str) -> String {
        let mut out = s.to_string();
        for p in &self.patterns {
            if out.contains(p.as_str()) {
                out = out.replace(p.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN EC PRIVATE KEY-----\n\
                       MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5jx7Iq8w0nK9yoAoGCCqGSM49\n\
                       AwEHoUQDQgAEJt9nZ9Ua0dFlZWGxkKpxlE0A6xrbf0WHD8wHs1y1nLXrA7CSnsIx\n\
                       ab\n\
                       -----END EC PRIVATE KEY-----\n";

    #[test]
    fn redacts_whole_value() {
        let mut s = Secrets::default();
        assert!(s.register("p@ss:word"));
        assert_eq!(
            s.redact("login with p@ss:word failed; p@ss:word again"),
            "login with *** failed; *** again"
        );
    }

    #[test]
    fn redacts_partial_lines_of_a_multi_line_secret() {
        let mut s = Secrets::default();
        s.register(PEM);
        // The whole key is replaced at once.
        assert_eq!(s.redact(&format!("key was {PEM}!")), "key was ***!");
        // A message that quotes only one line of the key (e.g. a parser error).
        let msg = "bad base64 in line \
                   'AwEHoUQDQgAEJt9nZ9Ua0dFlZWGxkKpxlE0A6xrbf0WHD8wHs1y1nLXrA7CSnsIx'";
        assert_eq!(s.redact(msg), "bad base64 in line '***'");
        // CRLF copies of the key are caught line by line.
        let crlf = PEM.replace('\n', "\r\n");
        let red = s.redact(&crlf);
        assert!(!red.contains("MHcCAQ"), "{red}");
        assert!(!red.contains("AwEHoUQ"), "{red}");
        // Lines shorter than four characters are not redacted alone.
        assert_eq!(s.redact("ab cd"), "ab cd");
    }

    #[test]
    fn register_once_and_ignores_blank() {
        let mut s = Secrets::default();
        assert!(s.is_empty());
        assert!(!s.register(""));
        assert!(!s.register("  \n "));
        assert!(s.register("tok"));
        assert!(!s.register("tok"));
        assert!(!s.is_empty());
        // A short whole value is still redacted: it was registered as a secret.
        assert_eq!(s.redact("a tok b"), "a *** b");
    }

    #[test]
    fn surrounding_whitespace_of_secret_is_not_required() {
        let mut s = Secrets::default();
        s.register("  token-value\n");
        assert_eq!(s.redact("x token-value y"), "x *** y");
    }

    #[test]
    fn several_secrets_unicode_safe() {
        let mut s = Secrets::default();
        s.register("pässwörd✓");
        s.register("ghp_abcdef123456");
        assert_eq!(
            s.redact("ü pässwörd✓ and ghp_abcdef123456 ✓"),
            "ü *** and *** ✓"
        );
        assert_eq!(s.redact("nothing here"), "nothing here");
    }
}
