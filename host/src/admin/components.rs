//! Components uploaded to `sluice serve`, kept per owner.
//!
//! A deploy or swap never names a host path: the client uploads each
//! component's bytes (`PUT /components`), the host stores them under the
//! owner's own area, named by their SHA-256, and a deploy refers to them by
//! digest. The host writes every file itself (a temporary file renamed into
//! place), so a tenant can place neither a symlink nor a `..` there, and a
//! digest is checked to be 64 hex digits before it becomes a file name.
//! Building a plugin from source runs its build scripts natively; that is
//! the developer's command (`sluice plugin build`, or `sluice deploy`
//! building on the developer's machine before it uploads), never the
//! host's.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One owner's components: a directory the host alone writes.
#[derive(Debug, Clone)]
pub struct ComponentStore {
    dir: PathBuf,
    /// Bytes all its components may take together.
    quota: u64,
}

/// A component stored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    /// Its SHA-256, hex: what a deploy or swap names it by.
    pub digest: String,
    /// Its size in bytes.
    pub bytes: u64,
}

impl ComponentStore {
    /// The store in `dir`, holding at most `quota` bytes.
    pub fn new(dir: PathBuf, quota: u64) -> ComponentStore {
        ComponentStore { dir, quota }
    }

    /// Stores `bytes` if they are a Wasm component and fit the quota.
    pub fn put(&self, bytes: &[u8]) -> Result<Stored, String> {
        if !wasmparser::Parser::is_component(bytes) {
            return Err(if wasmparser::Parser::is_core_wasm(bytes) {
                "the upload is a core Wasm module, not a component; build it with `sluice plugin build`".into()
            } else {
                "the upload is not a Wasm component (`\\0asm` header with the component layer)"
                    .into()
            });
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let path = self.dir.join(format!("{digest}.wasm"));
        let size = bytes.len() as u64;
        if path.is_file() {
            return Ok(Stored {
                digest,
                bytes: size,
            });
        }
        let used = self.used();
        if used + size > self.quota {
            return Err(format!(
                "the component ({size} bytes) does not fit the owner's component quota: {used} of {} bytes used",
                self.quota
            ));
        }
        create_private_dir(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| format!("storing the component: {e}"))?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| format!("storing the component: {e}"))?;
        tmp.persist(&path)
            .map_err(|e| format!("storing the component: {e}"))?;
        tracing::info!(digest = %digest, bytes = size, dir = %self.dir.display(), "component uploaded");
        Ok(Stored {
            digest,
            bytes: size,
        })
    }

    /// The file of the component `digest`, if this owner uploaded it.
    pub fn get(&self, digest: &str) -> Result<PathBuf, String> {
        let digest = digest.trim().to_ascii_lowercase();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{}` is not a component digest (64 hex digits, as `PUT /components` answers)",
                digest.chars().take(80).collect::<String>()
            ));
        }
        let path = self.dir.join(format!("{digest}.wasm"));
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            _ => Err(format!(
                "no component {digest} was uploaded by this owner (`PUT /components`; `sluice deploy` and `sluice swap` upload for you)"
            )),
        }
    }

    /// Bytes its components take now.
    fn used(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// Creates `dir` (and its parents) readable by the host's user alone.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_stored_by_digest_within_a_quota_and_only_found_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = ComponentStore::new(dir.path().join("c"), 64);
        let component = wat::parse_str("(component)").unwrap();
        let stored = store.put(&component).unwrap();
        assert_eq!(stored.digest.len(), 64);
        assert_eq!(
            store.get(&stored.digest).unwrap(),
            dir.path().join(format!("c/{}.wasm", stored.digest))
        );
        let e = store.put(b"not wasm").unwrap_err();
        assert!(e.contains("not a Wasm component"), "{e}");
        let core = wat::parse_str("(module)").unwrap();
        assert!(store.put(&core).unwrap_err().contains("core Wasm module"));
        let big = wat::parse_str("(component (core module (data \"0123456789012345678901234567890123456789012345678901234567890123456789\")))").unwrap();
        let e = store.put(&big).unwrap_err();
        assert!(e.contains("quota"), "{e}");
        for bad in ["../../etc/passwd", "", &"g".repeat(64)] {
            let e = store.get(bad).unwrap_err();
            assert!(e.contains("not a component digest"), "{e}");
        }
        let e = store.get(&"0".repeat(64)).unwrap_err();
        assert!(e.contains("no component"), "{e}");
        // A symlink planted in the store (by anyone but the host) is not
        // followed.
        let target = dir.path().join("elsewhere.wasm");
        std::fs::write(&target, &component).unwrap();
        let link = dir.path().join(format!("c/{}.wasm", "1".repeat(64)));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(store.get(&"1".repeat(64)).is_err());
    }
}
