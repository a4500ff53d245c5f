//! sign-action: sign and verify OCI artifacts in the Notary Project signature format.
//!
//! The library knows nothing of GitHub Actions; the binary's `action` module is the only
//! place that reads `INPUT_*` or writes workflow commands.

pub mod check;
pub mod crypto;
pub mod envelope;
pub mod inspect;
pub mod net;
pub mod oci;
pub mod oidc;
pub mod policy;
pub mod revocation;
pub mod sign;
pub mod signers;
pub mod testcert;
pub mod timestamp;
pub mod verify;
pub mod x509;

/// Value of the `io.cncf.notary.signingAgent` header we write.
pub fn signing_agent() -> String {
    format!("sign-action/{}", env!("CARGO_PKG_VERSION"))
}
