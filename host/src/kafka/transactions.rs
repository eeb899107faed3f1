//! Exactly-once: the producer's transactional identity.
//!
//! Where the rest of it lives: the transactional producer is set up in
//! [`super::producer`] (`OutputProducer::transactional`, whose
//! `init_transactions` fences an earlier producer with the same id), and
//! one transaction per commit interval is committed, with the offsets in
//! it, by the runner's coordinator (`runner/coordinator.rs`,
//! `Coordinator::commit_transaction`). Recovery from a transaction that
//! cannot complete is the runner's (`runner/recovery.rs`); the protocol is
//! written down in `docs/state.md`.

use std::path::Path;

/// The producer's `transactional.id` under exactly-once: the same for
/// every run of one instance, so that a restart fences the dead process
/// and aborts what it left open at once, and different between instances.
/// A stateful instance is its state directory `state_dir` (which only it
/// may lock) on its host; a stateless one adds its process id (a restart
/// then waits up to `transaction.timeout.ms` for what the dead one left
/// open). The `[kafka]` table may set `transactional.id` itself.
pub fn transactional_id(application_id: &str, state_dir: &Path, stateful: bool) -> String {
    use sha2::Digest;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let dir = std::fs::canonicalize(state_dir).unwrap_or(state_dir.to_path_buf());
    let mut instance = format!("{host}:{}", dir.display());
    if !stateful {
        instance.push_str(&format!(":{}", std::process::id()));
    }
    let digest = sha2::Sha256::digest(instance.as_bytes());
    format!("{application_id}-{}", hex::encode(&digest[..8]))
}
