//! The memory a pipeline's state may take (`[state] memory-mb`), shared by
//! every store of every task of the pipeline, so that one pipeline cannot
//! grow until it takes the host (and, under `sluice serve`, every tenant)
//! down.
//!
//! - RocksDB stores share one block cache of the budget's size, and one
//!   write-buffer manager charged to that cache, which flushes the store
//!   being written to once the pipeline's memtables pass half the budget.
//!   Each store's memtable is an eighth of the budget (1 to 64 MB), with
//!   one more at most being flushed (RocksDB slows the writer until it
//!   is). Data beyond that lives on disk, so a large state is slower,
//!   never fatal. Many idle stores each keep their memtable: the bound
//!   is the budget, or a quarter of it per store, whichever is more.
//! - In-memory stores (`store = "memory"`) have no disk to spill to: their
//!   keys and values are counted, and a write that would take them past the
//!   budget fails with [`StateError::MemoryFull`], which stops the
//!   pipeline with a message naming the store and the setting, before the
//!   host runs out of memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::StateError;

/// The default budget, per pipeline.
pub const DEFAULT_MEMORY_MB: u64 = 256;

/// What an in-memory entry costs beyond its key and value (the tree's node
/// share, two vectors' headers, allocator rounding), as counted.
pub const ENTRY_OVERHEAD: u64 = 64;

/// One pipeline's state memory budget.
pub struct MemoryBudget {
    limit: u64,
    /// Bytes the in-memory stores hold.
    in_memory: AtomicU64,
    rocksdb: OnceLock<(::rocksdb::Cache, ::rocksdb::WriteBufferManager)>,
    /// Serializes reservations against the limit.
    reserve: Mutex<()>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit)
            .field("in_memory", &self.in_memory.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::new(DEFAULT_MEMORY_MB << 20)
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryBudget {
            limit,
            in_memory: AtomicU64::new(0),
            rocksdb: OnceLock::new(),
            reserve: Mutex::new(()),
        }
    }

    /// The budget in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes the in-memory stores hold now.
    pub fn in_memory(&self) -> u64 {
        self.in_memory.load(Ordering::Relaxed)
    }

    /// Takes `grow` more bytes and gives back `shrink` for `store`, or
    /// refuses (taking nothing) when that would pass the budget.
    pub fn reserve(&self, store: &str, grow: u64, shrink: u64) -> Result<(), StateError> {
        let _serial = self.reserve.lock().expect("not poisoned");
        let used = self.in_memory.load(Ordering::Relaxed);
        let after = used.saturating_add(grow).saturating_sub(shrink);
        if grow > shrink && after > self.limit {
            return Err(StateError::MemoryFull {
                store: store.to_owned(),
                used,
                wanted: grow - shrink,
                limit: self.limit,
            });
        }
        self.in_memory.store(after, Ordering::Relaxed);
        Ok(())
    }

    /// Gives back `bytes` (a store dropped).
    pub fn release(&self, bytes: u64) {
        let _serial = self.reserve.lock().expect("not poisoned");
        let used = self.in_memory.load(Ordering::Relaxed);
        self.in_memory
            .store(used.saturating_sub(bytes), Ordering::Relaxed);
    }

    /// Sets RocksDB `options` to the pipeline's shared block cache and
    /// write-buffer manager (half the budget for memtables at most, the
    /// whole charged to the cache).
    pub fn apply_to(&self, options: &mut ::rocksdb::Options) {
        let (cache, manager) = self.rocksdb.get_or_init(|| {
            let cache = ::rocksdb::Cache::new_lru_cache(self.limit as usize);
            let manager = ::rocksdb::WriteBufferManager::new_write_buffer_manager_with_cache(
                (self.limit / 2) as usize,
                false,
                cache.clone(),
            );
            (cache, manager)
        });
        let mut table = ::rocksdb::BlockBasedOptions::default();
        table.set_block_cache(cache);
        options.set_block_based_table_factory(&table);
        options.set_write_buffer_manager(manager);
        // The manager flushes the store being written to once the
        // pipeline's memtables pass its size; a store left idle keeps its
        // memtable, so each is kept to an eighth of the budget.
        options.set_write_buffer_size((self.limit / 8).clamp(1 << 20, 64 << 20) as usize);
        // One memtable being flushed at most: past that, RocksDB slows the
        // writer until the flush is done.
        options.set_max_write_buffer_number(2);
    }

    /// Memory RocksDB's memtables take across the pipeline's stores, as
    /// the write-buffer manager counts it (0 before a RocksDB store opens).
    pub fn rocksdb_memtables(&self) -> u64 {
        self.rocksdb
            .get()
            .map_or(0, |(_, manager)| manager.get_usage() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_past_the_budget_are_refused_and_take_nothing() {
        let b = MemoryBudget::new(1_000);
        b.reserve("s", 600, 0).unwrap();
        let e = b.reserve("s", 500, 0).unwrap_err();
        assert!(matches!(e, StateError::MemoryFull { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("store `s`"), "{text}");
        assert!(text.contains("memory-mb"), "{text}");
        assert_eq!(b.in_memory(), 600);
        // Shrinking is always allowed, even past the budget.
        b.reserve("s", 100, 300).unwrap();
        assert_eq!(b.in_memory(), 400);
        b.release(1_000);
        assert_eq!(b.in_memory(), 0);
    }
}
