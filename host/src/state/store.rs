//! The store abstraction: an ordered key-value map, written atomically.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use crate::error::StateError;

/// One key-value entry.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An iterator over entries in key order.
pub type Entries<'a> = Box<dyn Iterator<Item = Result<Entry, StateError>> + 'a>;

/// A group of writes applied all or nothing: data writes, plus metadata
/// the host keeps beside the data (the last applied input offsets and the
/// changelog position), so that both move together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    data: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    meta: Vec<(String, Vec<u8>)>,
}

impl WriteBatch {
    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.data.push((key.to_vec(), Some(value.to_vec())));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.data.push((key.to_vec(), None));
    }

    /// Sets a metadata entry.
    pub fn put_meta(&mut self, name: &str, value: &[u8]) {
        self.meta.push((name.to_owned(), value.to_vec()));
    }

    /// Splits off the data writes from `at` on into a new batch (without
    /// metadata).
    pub fn split_off(&mut self, at: usize) -> WriteBatch {
        WriteBatch {
            data: self.data.split_off(at),
            meta: Vec::new(),
        }
    }

    /// Data writes, in order (`None` deletes).
    pub fn data(&self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        &self.data
    }

    /// Metadata writes, in order.
    pub fn meta(&self) -> &[(String, Vec<u8>)] {
        &self.meta
    }

    /// Number of data writes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True if the batch writes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty() && self.meta.is_empty()
    }
}

/// A task-local, ordered key-value store. Not shared between threads: a
/// task owns its stores, so no call takes a lock.
pub trait KeyValueStore: Send {
    /// The store's name.
    fn name(&self) -> &str;

    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// Entries with `from <= key < to` in key order (`None`: unbounded).
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Entries<'_>, StateError>;

    /// Applies `batch` atomically.
    fn write(&mut self, batch: &WriteBatch) -> Result<(), StateError>;

    /// A metadata entry written with [`WriteBatch::put_meta`].
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StateError>;
}

/// What a buffered write replaced: `None` when the key had no buffered
/// write, else that write (`Some(None)` a deletion).
type Replaced = Option<Option<Vec<u8>>>;

/// A store plus the writes of the current commit interval.
///
/// Reads see the buffered writes; nothing reaches the store until
/// [`StoreBuffer::take`] hands the writes over as one [`WriteBatch`], at
/// commit. The same writes are what the changelog receives.
///
/// The writes of a call batch can be taken back: [`StoreBuffer::accept`]
/// keeps them once the batch has succeeded, and [`StoreBuffer::discard`]
/// undoes them when it failed part-way, so that a failed batch leaves no
/// partial effects to be applied twice. They go straight into the buffer,
/// with what each one replaced in an undo log: a read looks in one map,
/// and accepting a batch (every batch, where discarding is rare) only
/// clears the log.
///
/// The writes are a hash map, beside an ordered set of their keys for
/// range scans and the commit's batch: an aggregation reads and rewrites
/// the same keys many times per commit, and a hashed lookup of a long key
/// costs one comparison where an ordered map's costs a dozen (about a
/// sixth of a hopping count's stream thread went to those comparisons).
/// Only a key's first write in a commit interval pays for the ordered set.
pub struct StoreBuffer {
    store: Box<dyn KeyValueStore>,
    /// The writes of the commit interval, the current batch's included.
    pending: foldhash::HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// The keys of `pending`, in order.
    order: BTreeSet<Vec<u8>>,
    /// What each write of the current batch replaced, in order.
    undo: Vec<(Vec<u8>, Replaced)>,
    /// Scan floors of accepted batches ([`StoreBuffer::floor`]), by the
    /// key an index starts at.
    floors: HashMap<Vec<u8>, Vec<u8>>,
    /// Scan floors the current batch raised.
    batch_floors: HashMap<Vec<u8>, Vec<u8>>,
}

impl std::fmt::Debug for StoreBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBuffer")
            .field("store", &self.store.name())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl StoreBuffer {
    /// Buffers writes in front of `store`.
    pub fn new(store: Box<dyn KeyValueStore>) -> Self {
        StoreBuffer {
            store,
            pending: foldhash::HashMap::default(),
            order: BTreeSet::new(),
            undo: Vec::new(),
            floors: HashMap::new(),
            batch_floors: HashMap::new(),
        }
    }

    /// The value of `key`, buffered writes first.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.get_ref(key)?.map(std::borrow::Cow::into_owned))
    }

    /// As [`StoreBuffer::get`], borrowing a buffered value rather than
    /// copying it (an aggregate rewritten many times per commit is read
    /// from the buffer nearly every time).
    pub fn get_ref(&self, key: &[u8]) -> Result<Option<std::borrow::Cow<'_, [u8]>>, StateError> {
        use std::borrow::Cow;
        match self.pending.get(key) {
            Some(v) => Ok(v.as_deref().map(Cow::Borrowed)),
            None => Ok(self.store.get(key)?.map(Cow::Owned)),
        }
    }

    /// Buffers `key = value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.write(key, Some(value.to_vec()));
    }

    /// Buffers the deletion of `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.write(key, None);
    }

    fn write(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        let replaced = match self.pending.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.order.insert(key.to_vec());
                self.pending.insert(key.to_vec(), value);
                None
            }
        };
        self.undo.push((key.to_vec(), replaced));
    }

    /// Keeps the writes of the batch that just succeeded.
    pub fn accept(&mut self) {
        self.undo.clear();
        self.floors.extend(self.batch_floors.drain());
    }

    /// Undoes the writes of the batch that failed, latest first.
    pub fn discard(&mut self) {
        for (key, replaced) in self.undo.drain(..).rev() {
            match replaced {
                // The key stayed in the buffer: a later write of the batch
                // replaced its value but never removes a key.
                Some(value) => match self.pending.get_mut(&key) {
                    Some(slot) => *slot = value,
                    None => {
                        self.order.insert(key.clone());
                        self.pending.insert(key, value);
                    }
                },
                None => {
                    self.pending.remove(&key);
                    self.order.remove(&key);
                }
            }
        }
        self.batch_floors.clear();
    }

    /// Where a scan of the ordered index that starts at `index` may begin:
    /// every key of it below the floor was deleted (see
    /// [`StoreBuffer::raise_floor`]); `index` itself when none was raised.
    ///
    /// An index read as a queue (windows by close time, entries by expiry
    /// time) is scanned from its start and emptied from the front. RocksDB
    /// keeps a deleted key as a tombstone until a compaction drops it, and
    /// a scan from the start steps over every one: the cost of each scan
    /// grows with all that was ever deleted. Seeking to the floor skips them.
    pub fn floor<'a>(&'a self, index: &'a [u8]) -> &'a [u8] {
        (self.batch_floors.get(index))
            .or_else(|| self.floors.get(index))
            .map_or(index, Vec::as_slice)
    }

    /// Records that the current batch deleted every key of the index at
    /// `index` below `floor`, and that no key below it will be written
    /// again. It holds once the batch is accepted, and is dropped with a
    /// discarded one, whose deletions are dropped too. Kept in memory only:
    /// a task that opens its store again scans from the start once.
    pub fn raise_floor(&mut self, index: &[u8], floor: &[u8]) {
        if floor > self.floor(index) {
            self.batch_floors.insert(index.to_vec(), floor.to_vec());
        }
    }

    /// Entries with `from <= key < to`, buffered writes applied, in order.
    pub fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<Entry>, StateError> {
        self.range_limited(from, to, usize::MAX)
    }

    /// As [`StoreBuffer::range`], stopping after `limit` entries: the store
    /// is read lazily, merged with the buffered writes, so a short scan of
    /// a large store reads little of it.
    pub fn range_limited(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError> {
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let mut base = self.store.range(from, to)?.peekable();
        let mut over = (self.order.range::<[u8], _>((lower, upper)))
            .map(|k| (k, &self.pending[k]))
            .peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            // Which comes next: the overlay's key (Less), the store's
            // (Greater), or the same key in both (Equal: the overlay wins).
            let next = match (base.peek(), over.peek()) {
                (None, None) => break,
                (Some(Err(_)), _) => {
                    return Err(base.next().expect("peeked").expect_err("peeked an error"));
                }
                (Some(Ok((bk, _))), Some((ok, _))) => ok.as_slice().cmp(bk.as_slice()),
                (None, Some(_)) => Ordering::Less,
                (Some(Ok(_)), None) => Ordering::Greater,
            };
            if next == Ordering::Greater {
                out.push(base.next().expect("peeked")?);
                continue;
            }
            if next == Ordering::Equal {
                base.next();
            }
            let (k, v) = over.next().expect("peeked");
            if let Some(v) = v {
                out.push((k.clone(), v.clone()));
            }
        }
        Ok(out)
    }

    /// Number of buffered writes.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Hands over the buffered writes as one batch (in key order) and
    /// clears the buffer. The caller adds metadata and writes it.
    pub fn take(&mut self) -> WriteBatch {
        debug_assert!(
            self.undo.is_empty(),
            "a batch is accepted or discarded before a commit"
        );
        // The map keeps its capacity for the next interval.
        let data = (std::mem::take(&mut self.order).into_iter())
            .map(|k| {
                let v = (self.pending.remove(&k)).expect("every ordered key is pending");
                (k, v)
            })
            .collect();
        debug_assert!(self.pending.is_empty());
        WriteBatch {
            data,
            meta: Vec::new(),
        }
    }

    /// The store under the buffer.
    pub fn store(&mut self) -> &mut dyn KeyValueStore {
        self.store.as_mut()
    }
}

/// Behaviour every [`KeyValueStore`] must have; run by each
/// implementation's tests.
#[cfg(test)]
pub(crate) fn check_store_contract(store: &mut dyn KeyValueStore) {
    assert_eq!(store.get(b"a").unwrap(), None);
    let mut b = WriteBatch::default();
    b.put(b"b", b"2");
    b.put(b"a", b"1");
    b.put(b"c", b"3");
    b.put(b"c", b"33");
    b.put_meta("applied", b"42");
    store.write(&b).unwrap();
    assert_eq!(
        store.get(b"c").unwrap().as_deref(),
        Some(&b"33"[..]),
        "later write in a batch wins"
    );
    assert_eq!(store.meta("applied").unwrap().as_deref(), Some(&b"42"[..]));
    assert_eq!(store.meta("other").unwrap(), None);
    assert_eq!(store.get(b"applied").unwrap(), None, "metadata is not data");
    let all: Vec<Entry> = store
        .range(None, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        all,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"33".to_vec())
        ]
    );
    let mid: Vec<Entry> = store
        .range(Some(b"b"), Some(b"c"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        mid,
        vec![(b"b".to_vec(), b"2".to_vec())],
        "from inclusive, to exclusive"
    );
    let mut d = WriteBatch::default();
    d.delete(b"b");
    store.write(&d).unwrap();
    assert_eq!(store.get(b"b").unwrap(), None);
    let tail: Vec<Entry> = store
        .range(Some(b"b"), None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tail, vec![(b"c".to_vec(), b"33".to_vec())]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryStore;

    #[test]
    fn buffer_reads_its_own_writes_and_hands_them_over_once() {
        let mut base = MemoryStore::new("s");
        let mut seed = WriteBatch::default();
        seed.put(b"a", b"1");
        seed.put(b"b", b"2");
        base.write(&seed).unwrap();

        let mut buf = StoreBuffer::new(Box::new(base));
        buf.put(b"c", b"3");
        buf.delete(b"a");
        buf.put(b"b", b"22");
        buf.accept();
        buf.put(b"x", b"failed batch");
        buf.delete(b"c");
        buf.put(b"b", b"failed 1");
        buf.put(b"b", b"failed 2");
        buf.put(b"c", b"failed 3");
        assert_eq!(buf.get(b"b").unwrap().as_deref(), Some(&b"failed 2"[..]));
        assert_eq!(
            buf.get(b"x").unwrap().as_deref(),
            Some(&b"failed batch"[..])
        );
        assert_eq!(buf.range(None, None).unwrap().len(), 3);
        assert_eq!(
            buf.range_limited(Some(b"b"), None, 1).unwrap(),
            vec![(b"b".to_vec(), b"failed 2".to_vec())],
            "limited, from the middle"
        );
        buf.discard();
        assert_eq!(
            buf.get(b"x").unwrap(),
            None,
            "a failed batch leaves nothing"
        );
        assert_eq!(buf.get(b"a").unwrap(), None);
        assert_eq!(buf.get(b"b").unwrap().as_deref(), Some(&b"22"[..]));
        assert_eq!(
            buf.range(None, None).unwrap(),
            vec![
                (b"b".to_vec(), b"22".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        assert_eq!(
            buf.store().get(b"b").unwrap().as_deref(),
            Some(&b"2"[..]),
            "nothing written before commit"
        );

        let batch = buf.take();
        assert_eq!(batch.len(), 3);
        assert_eq!(buf.pending(), 0);
        buf.store().write(&batch).unwrap();
        assert_eq!(buf.get(b"a").unwrap(), None);
        assert_eq!(buf.get(b"b").unwrap().as_deref(), Some(&b"22"[..]));
        assert!(buf.take().is_empty());
    }

    #[test]
    fn a_scan_floor_holds_once_its_batch_is_accepted_and_goes_with_a_discarded_one() {
        let mut buf = StoreBuffer::new(Box::new(MemoryStore::new("s")));
        let index: &[u8] = &[7];
        assert_eq!(buf.floor(index), index, "none raised: the index's start");
        buf.raise_floor(index, &[7, 5]);
        assert_eq!(buf.floor(index), [7, 5], "the batch sees its own floor");
        buf.discard();
        assert_eq!(buf.floor(index), index, "a failed batch's floor is dropped");
        buf.raise_floor(index, &[7, 5]);
        buf.accept();
        buf.raise_floor(index, &[7, 3]);
        assert_eq!(buf.floor(index), [7, 5], "a floor never goes down");
        buf.raise_floor(index, &[7, 9]);
        buf.discard();
        assert_eq!(buf.floor(index), [7, 5]);
        buf.take();
        assert_eq!(buf.floor(index), [7, 5], "kept across commits");
        assert_eq!(buf.floor(&[8]), [8], "per index");
    }
}
