//! Who is calling the admin API: the operator, a tenant, or nobody.
//!
//! Every request carries a bearer token (`Authorization: Bearer <token>`).
//! The operator's token is read from a file the operator controls
//! (`sluice serve --token-file`, created with a random token, mode 0600,
//! when missing); a tenant's token is issued by the operator (`POST
//! /tenants/{name}/token`, or at creation) or set in the tenants file as
//! its SHA-256 (`token-sha256`). The host keeps only SHA-256 digests, and
//! compares them in constant time, each against every known token, so
//! neither the answer nor its timing tells which tenant, if any, a token
//! almost matched.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator: every action, on every tenant.
    Operator,
    /// A tenant: its own pipelines and components only.
    Tenant(String),
}

impl Caller {
    /// Whether the caller may act on what `owner` owns (`None`: a
    /// pipeline without a tenant, the operator's own).
    pub fn owns(&self, owner: Option<&str>) -> bool {
        match self {
            Caller::Operator => true,
            Caller::Tenant(t) => owner == Some(t.as_str()),
        }
    }
}

/// A token's digest, as the host keeps it.
pub type TokenDigest = [u8; 32];

/// The SHA-256 of a token.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Parses a `token-sha256` (64 hex digits).
pub fn parse_digest(hex_digest: &str) -> Result<TokenDigest, String> {
    let bytes =
        hex::decode(hex_digest.trim()).map_err(|e| format!("`token-sha256` is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "`token-sha256` must be 64 hex digits (a SHA-256)".to_owned())
}

/// Whether two digests are equal, in time independent of where they
/// differ.
pub fn same(a: &TokenDigest, b: &TokenDigest) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // A read the optimizer cannot see through, so the fold is not cut
    // short.
    std::hint::black_box(diff) == 0
}

/// A new random token: 32 bytes from the kernel's generator, hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Reads the operator's token from `path`, or writes a new one there
/// (mode 0600, in a 0700 directory when it creates the directory) when the
/// file does not exist. A token file readable by other users is refused.
pub fn operator_token(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "the operator token file {} is readable by other users (mode {:o}); `chmod 600` it",
                    path.display(),
                    mode & 0o777
                ));
            }
            let token = text.trim().to_owned();
            if token.len() < 16 {
                return Err(format!(
                    "the operator token in {} is shorter than 16 characters",
                    path.display()
                ));
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                super::components::create_private_dir(dir)?;
            }
            let token = new_token().map_err(|e| format!("reading /dev/urandom: {e}"))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("creating the operator token file {}: {e}", path.display()))?;
            std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            tracing::info!(file = %path.display(), "operator token written");
            Ok(token)
        }
        Err(e) => Err(format!(
            "cannot read the operator token file {}: {e}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_by_digest_and_parsed_from_headers() {
        let a = digest("secret-token");
        assert!(same(&a, &digest("secret-token")));
        assert!(!same(&a, &digest("secret-tokeN")));
        assert_eq!(parse_digest(&hex::encode(a)).unwrap(), a);
        assert!(parse_digest("abcd").unwrap_err().contains("64 hex digits"));
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert!(Caller::Operator.owns(Some("x")) && Caller::Operator.owns(None));
        let t = Caller::Tenant("x".into());
        assert!(t.owns(Some("x")) && !t.owns(Some("y")) && !t.owns(None));
    }

    #[test]
    fn the_operator_token_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/operator.token");
        let token = operator_token(&path).unwrap();
        assert_eq!(token.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(operator_token(&path).unwrap(), token, "read back");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = operator_token(&path).unwrap_err();
        assert!(e.contains("readable by other users"), "{e}");
    }
}
