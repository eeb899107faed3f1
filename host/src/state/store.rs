//! The store abstraction: an ordered key-value map, written atomically.

use std::cmp::Ordering;
use std::collections::BTreeMap;
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

/// A store plus the writes of the current commit interval.
///
/// Reads see the buffered writes; nothing reaches the store until
/// [`StoreBuffer::take`] hands the writes over as one [`WriteBatch`], at
/// commit. The same writes are what the changelog receives.
///
/// Writes go first to a *batch* layer: [`StoreBuffer::accept`] keeps them
/// once the call batch that made them has succeeded, and
/// [`StoreBuffer::discard`] drops them when it failed part-way, so that a
/// failed batch leaves no partial effects to be applied twice.
pub struct StoreBuffer {
    store: Box<dyn KeyValueStore>,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    batch: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
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
            pending: BTreeMap::new(),
            batch: BTreeMap::new(),
        }
    }

    /// The value of `key`, buffered writes first.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.batch.get(key).or_else(|| self.pending.get(key)) {
            Some(v) => Ok(v.clone()),
            None => self.store.get(key),
        }
    }

    /// Buffers `key = value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.batch.insert(key.to_vec(), Some(value.to_vec()));
    }

    /// Buffers the deletion of `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.batch.insert(key.to_vec(), None);
    }

    /// Keeps the writes of the batch that just succeeded.
    pub fn accept(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        self.pending.extend(batch);
    }

    /// Drops the writes of the batch that failed.
    pub fn discard(&mut self) {
        self.batch.clear();
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
        // The buffered writes in range; the batch layer wins over pending.
        let mut overlay: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for layer in [&self.pending, &self.batch] {
            for (k, v) in layer.range::<[u8], _>((lower, upper)) {
                overlay.insert(k, v.as_deref());
            }
        }
        let mut base = self.store.range(from, to)?.peekable();
        let mut over = overlay.into_iter().peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            // Which comes next: the overlay's key (Less), the store's
            // (Greater), or the same key in both (Equal: the overlay wins).
            let next = match (base.peek(), over.peek()) {
                (None, None) => break,
                (Some(Err(_)), _) => {
                    return Err(base.next().expect("peeked").expect_err("peeked an error"));
                }
                (Some(Ok((bk, _))), Some((ok, _))) => (*ok).cmp(bk.as_slice()),
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
                out.push((k.to_vec(), v.to_vec()));
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
            self.batch.is_empty(),
            "a batch is accepted or discarded before a commit"
        );
        WriteBatch {
            data: std::mem::take(&mut self.pending).into_iter().collect(),
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
        assert_eq!(
            buf.get(b"x").unwrap().as_deref(),
            Some(&b"failed batch"[..])
        );
        assert_eq!(buf.range(None, None).unwrap().len(), 2);
        assert_eq!(
            buf.range_limited(Some(b"b"), None, 1).unwrap(),
            vec![(b"b".to_vec(), b"22".to_vec())],
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
}
