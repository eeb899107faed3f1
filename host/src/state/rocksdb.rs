//! The RocksDB store: one database per application, task and store, under
//! `state.dir`. Data and host metadata live in two column families,
//! written together in one RocksDB `WriteBatch` (atomic, through the WAL).

use std::path::{Path, PathBuf};

use ::rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions};

use super::memory_budget::MemoryBudget;
use super::store::{Entries, KeyValueStore, WriteBatch};
use crate::error::StateError;

const META: &str = "sluice-meta";

/// How long opening waits for a lock held by someone else.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn is_lock_error(message: &str) -> bool {
    message.contains("LOCK") || message.contains("lock file")
}

/// A RocksDB-backed [`KeyValueStore`].
pub struct RocksDbStore {
    name: String,
    path: PathBuf,
    db: DB,
}

impl std::fmt::Debug for RocksDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDbStore")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

fn options(budget: Option<&MemoryBudget>) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_compression_type(::rocksdb::DBCompressionType::Lz4);
    if let Some(budget) = budget {
        budget.apply_to(&mut o);
    }
    o
}

impl RocksDbStore {
    /// Opens (or creates) the store in `dir`, with RocksDB's own memory
    /// defaults.
    pub fn open(dir: &Path, name: &str) -> Result<Self, StateError> {
        Self::open_within(dir, name, None)
    }

    /// Opens (or creates) the store in `dir`; its memtables and block
    /// cache count against the pipeline's `budget`, when given.
    pub fn open_within(
        dir: &Path,
        name: &str,
        budget: Option<&MemoryBudget>,
    ) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_owned(),
            source,
        })?;
        // The default column family (the data) named too: left out,
        // rust-rocksdb would open it with RocksDB's default options.
        let db = DB::open_cf_descriptors(
            &options(budget),
            dir,
            [
                ColumnFamilyDescriptor::new(::rocksdb::DEFAULT_COLUMN_FAMILY_NAME, options(budget)),
                ColumnFamilyDescriptor::new(META, options(budget)),
            ],
        )
        .map_err(|e| StateError::Open {
            store: name.to_owned(),
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
        Ok(RocksDbStore {
            name: name.to_owned(),
            path: dir.to_owned(),
            db,
        })
    }

    /// Opens the store in `dir`; if it cannot be opened (corrupt or
    /// unreadable), deletes it and starts empty, so that a restore from the
    /// changelog rebuilds it. Returns whether it was rebuilt.
    ///
    /// A store locked by another process (or by a task of this one that is
    /// still closing) is never deleted: opening is retried for up to
    /// `LOCK_WAIT`, then refused.
    pub fn open_or_rebuild(
        dir: &Path,
        name: &str,
        budget: Option<&MemoryBudget>,
    ) -> Result<(Self, bool), StateError> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match Self::open_within(dir, name, budget) {
                Err(StateError::Open { message, .. })
                    if is_lock_error(&message) && std::time::Instant::now() < deadline =>
                {
                    tracing::debug!(store = name, path = %dir.display(), "{message}; waiting for its owner to close it");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                other => return Self::rebuild_unless_locked(dir, name, budget, other),
            }
        }
    }

    fn rebuild_unless_locked(
        dir: &Path,
        name: &str,
        budget: Option<&MemoryBudget>,
        opened: Result<Self, StateError>,
    ) -> Result<(Self, bool), StateError> {
        match opened {
            Ok(s) => Ok((s, false)),
            Err(StateError::Open { message, .. }) if is_lock_error(&message) => {
                Err(StateError::Open {
                    store: name.to_owned(),
                    path: dir.to_owned(),
                    message: format!(
                        "{message}; another process holds it. Give each instance on one machine its own `state.dir` (or --state-dir)"
                    ),
                })
            }
            Err(e) => {
                tracing::warn!(store = name, path = %dir.display(), "{e}; deleting it to rebuild from the changelog");
                let _ = DB::destroy(&options(None), dir);
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|source| StateError::Io {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                Ok((Self::open_within(dir, name, budget)?, true))
            }
        }
    }

    /// Bytes its memtables take now (RocksDB's
    /// `rocksdb.cur-size-all-mem-tables`, over both column families).
    pub fn memtable_bytes(&self) -> u64 {
        let property = "rocksdb.cur-size-all-mem-tables";
        let data = self.db.property_int_value(property).ok().flatten();
        let meta = self
            .db
            .property_int_value_cf(self.meta_cf(), property)
            .ok()
            .flatten();
        data.unwrap_or(0) + meta.unwrap_or(0)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: ::rocksdb::Error) -> StateError {
        StateError::Rocks {
            store: self.name.clone(),
            message: e.to_string(),
        }
    }

    fn meta_cf(&self) -> &::rocksdb::ColumnFamily {
        self.db.cf_handle(META).expect("created at open")
    }
}

impl KeyValueStore for RocksDbStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.db.get(key).map_err(|e| self.err(e))
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Entries<'_>, StateError> {
        let mut read = ReadOptions::default();
        if let Some(to) = to {
            read.set_iterate_upper_bound(to.to_vec());
        }
        let mode = match from {
            Some(from) => IteratorMode::From(from, Direction::Forward),
            None => IteratorMode::Start,
        };
        Ok(Box::new(self.db.iterator_opt(mode, read).map(
            move |item| {
                item.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(|e| StateError::Rocks {
                        store: self.name.clone(),
                        message: e.to_string(),
                    })
            },
        )))
    }

    fn write(&mut self, batch: &WriteBatch) -> Result<(), StateError> {
        let mut wb = ::rocksdb::WriteBatch::default();
        for (k, v) in batch.data() {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            }
        }
        let meta = self.meta_cf();
        for (k, v) in batch.meta() {
            wb.put_cf(meta, k.as_bytes(), v);
        }
        self.db.write(wb).map_err(|e| self.err(e))
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.db
            .get_cf(self.meta_cf(), name.as_bytes())
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rocksdb_store_keeps_the_store_contract_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let mut s = RocksDbStore::open(&path, "s").unwrap();
            super::super::store::check_store_contract(&mut s);
        }
        let s = RocksDbStore::open(&path, "s").unwrap();
        assert_eq!(s.get(b"c").unwrap().as_deref(), Some(&b"33"[..]));
        assert_eq!(s.meta("applied").unwrap().as_deref(), Some(&b"42"[..]));
    }

    /// Four stores of one pipeline, each written 12 MB of distinct keys,
    /// twice over: with a budget of 8 MB their memtables together stay
    /// within it whatever the volume, and everything reads back. With
    /// RocksDB's defaults one store alone keeps all 24 MB in memory. (The
    /// data column family must get the options too: rust-rocksdb opens one
    /// left unnamed with RocksDB's defaults, and this test failed so.)
    #[test]
    fn the_pipelines_stores_keep_their_memtables_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 8u64 << 20;
        let budget = MemoryBudget::new(limit);
        let write = |s: &mut RocksDbStore, from: u32| {
            for chunk in 0..12u32 {
                let mut b = WriteBatch::default();
                for i in 0..1_000u32 {
                    let key = (from + chunk * 1_000 + i).to_be_bytes();
                    b.put(&key, &[chunk as u8; 1_000]);
                }
                s.write(&b).unwrap();
            }
        };
        let mut stores: Vec<RocksDbStore> = (0..4)
            .map(|i| {
                RocksDbStore::open_within(&dir.path().join(format!("s{i}")), "s", Some(&budget))
                    .unwrap()
            })
            .collect();
        let total =
            |stores: &[RocksDbStore]| stores.iter().map(RocksDbStore::memtable_bytes).sum::<u64>();
        for round in 0..2u32 {
            for i in 0..stores.len() {
                write(&mut stores[i], round * 1_000_000 + i as u32 * 100_000);
                let now = total(&stores);
                assert!(
                    now <= limit,
                    "round {round}, store {i}: memtables hold {now} bytes, budget {limit}"
                );
            }
        }
        assert!(budget.rocksdb_memtables() > 0, "the manager counts them");
        for (i, s) in stores.iter().enumerate() {
            let key = (1_000_000 + i as u32 * 100_000 + 11_999).to_be_bytes();
            assert_eq!(s.get(&key).unwrap(), Some(vec![11; 1_000]));
        }
        // The control: RocksDB's defaults (64 MB memtables) keep it all.
        let mut unbounded = RocksDbStore::open(&dir.path().join("defaults"), "d").unwrap();
        write(&mut unbounded, 0);
        write(&mut unbounded, 1_000_000);
        assert!(
            unbounded.memtable_bytes() > 2 * limit,
            "{}",
            unbounded.memtable_bytes()
        );
    }

    #[test]
    fn a_corrupt_directory_is_rebuilt_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let mut s = RocksDbStore::open(&path, "s").unwrap();
            let mut b = WriteBatch::default();
            b.put(b"k", b"v");
            s.write(&b).unwrap();
        }
        // Scribble over every file of the database.
        for f in std::fs::read_dir(&path).unwrap() {
            let f = f.unwrap().path();
            if f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("CURRENT")
            {
                std::fs::write(&f, b"garbage\n").unwrap();
            }
        }
        let (s, rebuilt) = RocksDbStore::open_or_rebuild(&path, "s", None).unwrap();
        assert!(rebuilt);
        assert_eq!(s.get(b"k").unwrap(), None);
    }
}
