//! Artifact references: `host[:port]/repo[:tag][@digest]`, normalised as docker does.
//!
//! Hand-written: the grammar is small (distribution's `reference` package), and the crates
//! that implement it bring a regex engine and their own error types for ~150 lines of logic.

use std::fmt;

/// A parse failure, naming what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    #[error("invalid reference {reference:?}: {reason}")]
    Invalid { reference: String, reason: String },
}

/// The registry docker uses when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";

/// Registry name used in [`Reference`]s that point into an OCI image layout on disk; the
/// `repository` field then holds the layout's directory path.
pub const LAYOUT_REGISTRY: &str = "oci-layout";

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Host and optional port, e.g. `ghcr.io`, `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn invalid(reference: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

impl Reference {
    /// Parse `host[:port]/repo[:tag][@digest]`. A missing host means Docker Hub (`alpine` is
    /// `docker.io/library/alpine`); the first path component is a host when it contains `.` or
    /// `:` or is `localhost`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(invalid(s, "the reference is empty"));
        }
        if s.len() > 4096 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                s,
                "unknown reference syntax: references contain no whitespace",
            ));
        }
        if s.contains("://") {
            return Err(invalid(
                s,
                "unknown reference syntax: give host/repository[:tag][@digest] without a URL scheme",
            ));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                validate_digest(d).map_err(|r| invalid(s, r))?;
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/': a ':' before that is a port.
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if last_slash.is_none_or(|j| i > j) => {
                (&name_tag[..i], Some(name_tag[i + 1..].to_string()))
            }
            _ => (name_tag, None),
        };
        if let Some(t) = &tag {
            validate_tag(t).map_err(|r| invalid(s, r))?;
        }
        if name.is_empty() {
            return Err(invalid(
                s,
                "unknown reference syntax: the repository name is missing",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_host(first).map_err(|r| invalid(s, r))?;
                let host = if first == "index.docker.io" || first == "registry-1.docker.io" {
                    DOCKER_HUB.to_string()
                } else {
                    first.to_string()
                };
                (host, rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        validate_repository(&repository).map_err(|r| invalid(s, r))?;
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`: the scope a trust policy names (`registryScopes`).
    pub fn fully_qualified_without_digest(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository pinned to `digest` (no tag): what a signature is about.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn target(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }

    /// True when this reference points into an OCI layout rather than a registry.
    pub fn is_layout(&self) -> bool {
        self.registry == LAYOUT_REGISTRY
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_layout() {
            write!(f, "{}", self.repository)?;
        } else {
            write!(f, "{}/{}", self.registry, self.repository)?;
        }
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Check `alg:hex` with a known algorithm and its exact lowercase hex length.
pub fn validate_digest(d: &str) -> Result<(), String> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| format!("digest {d:?} is not of the form sha256:<hex>"))?;
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => {
            return Err(format!(
                "digest algorithm {other:?} is not supported (use sha256, sha384 or sha512)"
            ))
        }
    };
    if hex.len() != want || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "digest {d:?}: {alg} needs exactly {want} lowercase hexadecimal characters"
        ));
    }
    Ok(())
}

/// Tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(t: &str) -> Result<(), String> {
    let ok_first = t
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok_first
        || t.len() > 128
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "tag {t:?} is invalid (1-128 characters of letters, digits, '_', '.', '-', not starting with '.' or '-')"
        ));
    }
    Ok(())
}

/// Repository grammar: `/`-separated components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn validate_repository(r: &str) -> Result<(), String> {
    if r.len() > 255 {
        return Err("the repository name is longer than 255 characters".into());
    }
    for comp in r.split('/') {
        if !valid_component(comp) {
            return Err(format!(
                "repository component {comp:?} is invalid (lowercase letters and digits, separated by '.', '_', '__' or '-')"
            ));
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or any number of '-'.
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn validate_host(h: &str) -> Result<(), String> {
    let bad = || format!("registry host {h:?} is invalid (expected host[:port])");
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let (ip6, after) = rest.split_once(']').ok_or_else(bad)?;
        ip6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (None, port)
    } else {
        match h.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(h), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if p.parse::<u32>().map_or(true, |n| n == 0 || n > 65535) {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_normalisation() {
        let r = p("alpine");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/alpine")
        );
        assert_eq!(r.tag, None);
        let r = p("user/app:1.0");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "user/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(p("index.docker.io/user/app").registry, "docker.io");
        assert_eq!(p("docker.io/alpine").repository, "library/alpine");
    }

    #[test]
    fn hosts_ports_tags_digests() {
        let r = p(&format!("127.0.0.1:5000/team/app:v1@{D}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.target(), Some(D));
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/team/app:v1@{D}"));
        assert_eq!(
            r.fully_qualified_without_digest(),
            "127.0.0.1:5000/team/app"
        );
        let r = p("localhost/app");
        assert_eq!(r.registry, "localhost");
        let r = p("localhost:5000/app");
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost:5000", None)
        );
        let r = p("[::1]:5000/app:x");
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(p("ghcr.io/o/r/s:latest").repository, "o/r/s");
        let r = p(&format!("ghcr.io/o/r@{D}"));
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(D)));
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert!(Reference::parse(&format!("x.io/r@{sha512}")).is_ok());
        let sha384 = format!("sha384:{}", "0".repeat(96));
        assert!(Reference::parse(&format!("x.io/r@{sha384}")).is_ok());
        assert_eq!(p("a.io/a__b.c-d---e/f_g").repository, "a__b.c-d---e/f_g");
    }

    #[test]
    fn rejects_with_reasons() {
        let cases = [
            ("", "empty"),
            ("Alpine", "component"),
            ("ghcr.io/Org/app", "component"),
            ("ghcr.io/app:-bad", "tag"),
            (&format!("ghcr.io/app:{}", "t".repeat(129)), "tag"),
            ("ghcr.io/app@sha256:abc", "64"),
            (&format!("ghcr.io/app@SHA256:{}", &D[7..]), "algorithm"),
            (&format!("ghcr.io/app@md5:{}", &D[7..]), "algorithm"),
            (
                &format!("ghcr.io/app@sha256:{}", D[7..].to_uppercase()),
                "lowercase",
            ),
            ("https://ghcr.io/app", "scheme"),
            ("ghcr.io/app name", "whitespace"),
            ("ghcr.io//app", "component"),
            ("ghcr.io/app/", "component"),
            ("ghcr.io:99999/app", "host"),
            ("bad_host.io/app", "host"),
            ("ghcr.io/a..b", "component"),
            ("ghcr.io/a___b", "component"),
            ("ghcr.io/", "component"),
        ];
        for (s, want) in cases {
            let e = Reference::parse(s).expect_err(s).to_string();
            assert!(e.contains(want), "{s:?}: {e}");
        }
    }

    #[test]
    fn with_digest_drops_tag() {
        let r = p("ghcr.io/app:v1").with_digest(D);
        assert_eq!(r.to_string(), format!("ghcr.io/app@{D}"));
    }
}
