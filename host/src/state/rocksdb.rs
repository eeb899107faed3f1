//! The RocksDB store: one database per application, task and store, under
//! `state.dir`. Data and host metadata live in two column families,
//! written together in one RocksDB `WriteBatch` (atomic, through the WAL).

use std::path::{Path, PathBuf};

use ::rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions};

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

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_compression_type(::rocksdb::DBCompressionType::Lz4);
    o
}

impl RocksDbStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, name: &str) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let db = DB::open_cf_descriptors(
            &options(),
            dir,
            [ColumnFamilyDescriptor::new(META, options())],
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
    pub fn open_or_rebuild(dir: &Path, name: &str) -> Result<(Self, bool), StateError> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match Self::open(dir, name) {
                Err(StateError::Open { message, .. })
                    if is_lock_error(&message) && std::time::Instant::now() < deadline =>
                {
                    tracing::debug!(store = name, path = %dir.display(), "{message}; waiting for its owner to close it");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                other => return Self::rebuild_unless_locked(dir, name, other),
            }
        }
    }

    fn rebuild_unless_locked(
        dir: &Path,
        name: &str,
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
                let _ = DB::destroy(&options(), dir);
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|source| StateError::Io {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                Ok((Self::open(dir, name)?, true))
            }
        }
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
        let (s, rebuilt) = RocksDbStore::open_or_rebuild(&path, "s").unwrap();
        assert!(rebuilt);
        assert_eq!(s.get(b"k").unwrap(), None);
    }
}
