//! Path building from the TSA signing certificate to a configured TSA root.
//!
//! Unlike signing chains (which Notary validates exactly as carried), a TimeStampToken holds
//! an unordered bag of certificates, possibly with cross-certificates and its own copy of a
//! root, and the trust anchor may be absent from it. RFC 5280 path building is therefore
//! needed; the search is small (a token carries a handful of certificates), depth-bounded
//! and prefers ending at a configured root as early as possible.

use crate::x509::Certificate;

use super::sigalg;

/// Longest path tried (leaf + intermediates + root).
const MAX_DEPTH: usize = 8;

/// Build `leaf → … → root` where root is one of `roots` (taken from `roots`, not from the
/// token). On failure, say which link was missing.
pub(crate) fn build(
    leaf: &Certificate,
    pool: &[Certificate],
    roots: &[Certificate],
) -> Result<Vec<Certificate>, String> {
    if roots.is_empty() {
        return Err("no TSA root certificates are configured".into());
    }
    let mut path = vec![leaf.clone()];
    let mut dead_end: Option<String> = None;
    if extend(&mut path, pool, roots, &mut dead_end) {
        return Ok(path);
    }
    Err(dead_end.unwrap_or_else(|| "no path found".into()))
}

fn extend(
    path: &mut Vec<Certificate>,
    pool: &[Certificate],
    roots: &[Certificate],
    dead_end: &mut Option<String>,
) -> bool {
    let current = path.last().expect("path starts with the leaf").clone();
    // The certificate is itself a configured root (by exact bytes).
    if roots.iter().any(|r| r.der() == current.der()) {
        return true;
    }
    for root in roots {
        if sigalg::issued_by(current.parsed(), root.parsed()).is_ok() {
            path.push(root.clone());
            return true;
        }
    }
    if path.len() >= MAX_DEPTH {
        *dead_end = Some(format!("path longer than {MAX_DEPTH} certificates"));
        return false;
    }
    let mut name_matched = false;
    for candidate in pool {
        if path.iter().any(|c| c.der() == candidate.der()) {
            continue;
        }
        match sigalg::issued_by(current.parsed(), candidate.parsed()) {
            Ok(()) => {
                name_matched = true;
                path.push(candidate.clone());
                if extend(path, pool, roots, dead_end) {
                    return true;
                }
                path.pop();
            }
            Err(reason) => {
                if reason != "issuer name does not match" {
                    name_matched = true;
                    *dead_end = Some(format!(
                        "certificate {} names issuer {} but that certificate's signature check failed: {reason}",
                        super::display_subject(&current),
                        super::display_subject(candidate),
                    ));
                }
            }
        }
    }
    if !name_matched {
        *dead_end = Some(if current.is_self_issued() {
            format!(
                "the path ends at the self-signed certificate {}, which is not one of the configured TSA roots",
                super::display_subject(&current)
            )
        } else {
            format!(
                "neither a configured TSA root nor a certificate in the token issued {} (issuer {})",
                super::display_subject(&current),
                super::display_issuer(&current),
            )
        });
    }
    false
}
