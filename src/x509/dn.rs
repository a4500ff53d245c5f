//! Distinguished names: printing certificate names as notation does and parsing RFC 4514
//! strings from trusted identities.

/// Render a certificate name as Go's `pkix.Name.String()` does (RFC 2253 order).
pub fn name_to_string(name: &x509_cert::name::Name) -> String {
    let _ = name;
    todo!("x509::dn::name_to_string")
}
