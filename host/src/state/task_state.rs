//! The stores of one task: opened and restored when the task starts,
//! written to their changelogs and to disk when it commits.
//!
//! A commit runs in three phases, with a producer flush between each, so
//! that an applied marker in a changelog always means "everything before
//! this, the sink records included, is acknowledged":
//!
//! 1. [`TaskStores::prepare`]: send each store's buffered writes to its
//!    changelog.
//! 2. [`TaskStores::mark`]: send each store's applied marker (the task's
//!    next input offsets).
//! 3. [`TaskStores::persist`]: write the same batch, with the offsets and
//!    the changelog position, to the local store in one write.
//!
//! Only then are the input offsets committed. `docs/state.md` goes through
//! what a crash between any two of these leaves, and why state stays exact.

use crate::state::global_table::{GlobalSpec, GlobalTables};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::changelog::{self, Applied, META_APPLIED, META_POSITION};
use super::memory::MemoryStore;
use super::memory_budget::MemoryBudget;
use super::restore::RestoreClients;
use super::rocksdb::RocksDbStore;
use super::settings::{StateSettings, StoreKind};
use super::store::{KeyValueStore, StoreBuffer, WriteBatch};
use crate::error::{RestoreError, RunError, StateError};
use crate::kafka::client_config::ClientSettings;
use crate::kafka::producer::{OutputProducer, Receipt};

/// What every task needs to open its stores.
#[derive(Debug, Clone)]
pub struct StateContext {
    /// `application.id`: the state directory and changelog prefix.
    pub application_id: String,
    /// Directory and store kind.
    pub settings: StateSettings,
    /// The cluster the changelogs live on; `None` runs without changelogs
    /// (tests of the task alone).
    pub kafka: Option<ClientSettings>,
    /// The memory every store of the pipeline may take together
    /// (`settings.memory_bytes`).
    pub budget: Arc<MemoryBudget>,
    /// The instance's global tables, which every task looks up (none
    /// until [`StateContext::with_global_tables`]).
    pub globals: Arc<GlobalTables>,
    /// Consumers kept for the stores' restores.
    pub restore_clients: Arc<RestoreClients>,
}

impl StateContext {
    /// The context of `application_id`'s stores, with a budget of
    /// `settings.memory_bytes`.
    pub fn new(
        application_id: &str,
        settings: StateSettings,
        kafka: Option<ClientSettings>,
    ) -> Self {
        StateContext {
            application_id: application_id.to_owned(),
            budget: Arc::new(MemoryBudget::new(settings.memory_bytes)),
            settings,
            kafka,
            globals: Arc::new(GlobalTables::default()),
            restore_clients: Arc::default(),
        }
    }

    /// The context with empty global tables of `specs`, counted against
    /// its budget.
    pub fn with_global_tables(mut self, specs: Vec<GlobalSpec>) -> Self {
        self.globals = Arc::new(GlobalTables::new(specs, &self.budget));
        self
    }
}

/// Where changelog records go: the shared producer, or a log in tests.
pub trait ChangelogWriter {
    /// Queues one record to `partition` of `topic`.
    fn send(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), RunError>;

    /// Queues one record; the receipt gets its offset once acknowledged.
    fn send_with_receipt(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: &[u8],
    ) -> Result<Receipt, RunError>;
}

impl ChangelogWriter for OutputProducer {
    fn send(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), RunError> {
        self.send_to(topic, partition, key, value)
    }

    fn send_with_receipt(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: &[u8],
    ) -> Result<Receipt, RunError> {
        OutputProducer::send_with_receipt(self, topic, partition, key, value)
    }
}

/// Offsets by (topic, partition).
pub type Offsets = BTreeMap<(Arc<str>, i32), i64>;

/// One store of a task.
struct TaskStore {
    name: String,
    changelog: String,
    /// `None` only while lent to a plugin instance for a call.
    buffer: Option<StoreBuffer>,
    /// Inputs below these offsets are already in the store (restored).
    applied: HashMap<(String, i32), i64>,
    /// The batch of the commit in progress.
    prepared: Option<WriteBatch>,
    receipt: Option<Receipt>,
}

impl TaskStore {
    fn buffer(&self) -> &StoreBuffer {
        self.buffer
            .as_ref()
            .expect("a lent store is back before the task goes on")
    }

    fn buffer_mut(&mut self) -> &mut StoreBuffer {
        self.buffer
            .as_mut()
            .expect("a lent store is back before the task goes on")
    }
}

/// The stores of one task.
pub struct TaskStores {
    task: i32,
    stores: Vec<TaskStore>,
    /// The task's next input offsets: what its processed batches cover.
    next: Offsets,
    /// What the last applied marker said.
    marked: Offsets,
    /// The next input offsets of the batches this task took (kept in every
    /// store), as `next` but without the restored markers.
    taken: Vec<(Arc<str>, i32, i64)>,
}

impl std::fmt::Debug for TaskStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskStores")
            .field("task", &self.task)
            .field(
                "stores",
                &self.stores.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl TaskStores {
    /// Opens the stores `names` of task `task`, restores each from its
    /// changelog, and queues a rewrite of the keys an unfinished commit left
    /// in a changelog (see [`changelog::restore`]).
    pub fn open(ctx: &StateContext, task: i32, names: &[&str]) -> Result<TaskStores, RestoreError> {
        let mut stores = Vec::with_capacity(names.len());
        for &name in names {
            let mut store: Box<dyn KeyValueStore> = match ctx.settings.kind {
                StoreKind::Memory => {
                    Box::new(MemoryStore::with_budget(name, Arc::clone(&ctx.budget)))
                }
                StoreKind::Rocksdb => {
                    let dir = super::store_dir(&ctx.settings.dir, &ctx.application_id, task, name);
                    let (store, rebuilt) =
                        RocksDbStore::open_or_rebuild(&dir, name, Some(&ctx.budget))?;
                    if rebuilt {
                        tracing::warn!(task, store = name, path = %dir.display(), "the local store was unreadable and is rebuilt from its changelog");
                    }
                    Box::new(store)
                }
            };
            let changelog_topic = changelog::topic(&ctx.application_id, name);
            let restored = match &ctx.kafka {
                Some(kafka) => ctx.restore_clients.restore(
                    kafka,
                    &changelog_topic,
                    task,
                    store.as_mut(),
                    ctx.settings.restore_chunk,
                )?,
                None => changelog::restore(store.as_mut(), std::iter::empty(), 1, |_| {})?,
            };
            let mut buffer = StoreBuffer::new(store);
            // Keys of an unfinished commit: write their true values in the
            // next commit, so that no later full replay applies them.
            for key in &restored.incomplete_keys {
                match buffer.get(key)? {
                    Some(v) => buffer.put(key, &v),
                    None => buffer.delete(key),
                }
            }
            buffer.accept();
            stores.push(TaskStore {
                name: name.to_owned(),
                changelog: changelog_topic,
                buffer: Some(buffer),
                applied: restored
                    .applied
                    .iter()
                    .map(|a| ((a.topic.clone(), a.partition), a.next))
                    .collect(),
                prepared: None,
                receipt: None,
            });
        }
        let marked: Offsets = stores
            .first()
            .map(|s| {
                s.applied
                    .iter()
                    .map(|((t, p), n)| ((Arc::from(t.as_str()), *p), *n))
                    .collect()
            })
            .unwrap_or_default();
        Ok(TaskStores {
            task,
            stores,
            next: marked.clone(),
            marked,
            taken: Vec::new(),
        })
    }

    /// The index of store `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.stores.iter().position(|s| s.name == name)
    }

    /// Store `i`, to read and write through its buffer.
    pub fn buffer(&mut self, i: usize) -> &mut StoreBuffer {
        self.stores[i].buffer.as_mut().expect("not lent")
    }

    /// Lends store `i` out (to a plugin instance, for one call).
    pub fn lend(&mut self, i: usize) -> StoreBuffer {
        self.stores[i].buffer.take().expect("lent once at a time")
    }

    /// Takes back a store lent with [`TaskStores::lend`].
    pub fn give_back(&mut self, i: usize, buffer: StoreBuffer) {
        debug_assert!(self.stores[i].buffer.is_none());
        self.stores[i].buffer = Some(buffer);
    }

    /// The name of store `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.stores[i].name
    }

    /// Whether store `i` already holds the effect of input `offset` of
    /// `topic`/`partition` (restored from a changelog marker).
    pub fn has_applied(&self, i: usize, topic: &str, partition: i32, offset: i64) -> bool {
        self.stores[i]
            .applied
            .get(&(topic.to_owned(), partition))
            .is_some_and(|&next| offset < next)
    }

    /// Whether every store holds the effect of the input: such a record is
    /// skipped entirely, its outputs were acknowledged before its marker.
    /// The stores hold it if a batch of this task took it too: a record of
    /// a repartition topic may come again, written twice upstream.
    pub fn all_applied(&self, topic: &str, partition: i32, offset: i64) -> bool {
        let taken = (self.taken.iter())
            .any(|(t, p, next)| *p == partition && offset < *next && **t == *topic);
        taken
            || !self.stores.is_empty()
                && (0..self.stores.len()).all(|i| self.has_applied(i, topic, partition, offset))
    }

    /// Keeps the writes of a call batch that succeeded, and its offsets.
    pub fn accept(&mut self, next: impl IntoIterator<Item = (Arc<str>, i32, i64)>) {
        for s in &mut self.stores {
            s.buffer_mut().accept();
        }
        for (topic, partition, offset) in next {
            match (self.taken.iter_mut()).find(|(t, p, _)| *p == partition && *t == topic) {
                Some(entry) => entry.2 = entry.2.max(offset),
                None => self.taken.push((Arc::clone(&topic), partition, offset)),
            }
            let e = self.next.entry((topic, partition)).or_insert(offset);
            *e = (*e).max(offset);
        }
    }

    /// Drops the writes of a call batch that failed part-way.
    pub fn discard(&mut self) {
        for s in &mut self.stores {
            s.buffer_mut().discard();
        }
    }

    /// Phase 1: sends the buffered writes to the changelogs. Returns false
    /// when there is nothing to commit.
    pub fn prepare(&mut self, w: &dyn ChangelogWriter) -> Result<bool, RunError> {
        let idle =
            self.next == self.marked && self.stores.iter().all(|s| s.buffer().pending() == 0);
        if idle {
            return Ok(false);
        }
        for s in &mut self.stores {
            let batch = s.buffer_mut().take();
            for (key, value) in batch.data() {
                let (k, v) = changelog::data_record(key, value.as_deref());
                w.send(&s.changelog, self.task, &k, v.as_deref())?;
            }
            s.prepared = Some(batch);
        }
        Ok(true)
    }

    /// Phase 2 (after a flush): sends each store's applied marker.
    pub fn mark(&mut self, w: &dyn ChangelogWriter) -> Result<(), RunError> {
        let applied = self.applied_list();
        let (key, value) = changelog::marker_record(&applied);
        for s in self.stores.iter_mut().filter(|s| s.prepared.is_some()) {
            s.receipt = Some(w.send_with_receipt(&s.changelog, self.task, &key, &value)?);
        }
        Ok(())
    }

    /// Phase 3 (after a flush): writes each prepared batch to its local
    /// store with the marker's offsets and the changelog position.
    pub fn persist(&mut self) -> Result<(), RunError> {
        let applied = serde_json::to_vec(&self.applied_list()).expect("serializable");
        for s in &mut self.stores {
            let Some(mut batch) = s.prepared.take() else {
                continue;
            };
            let offset = s
                .receipt
                .take()
                .map(|r| r.load(Ordering::Acquire))
                .unwrap_or(-1);
            if offset < 0 {
                return Err(RunError::Delivery(format!(
                    "the applied marker of store `{}` was not acknowledged",
                    s.name
                )));
            }
            batch.put_meta(META_APPLIED, &applied);
            batch.put_meta(META_POSITION, &(offset + 1).to_be_bytes());
            s.buffer_mut().store().write(&batch)?;
        }
        self.marked = self.next.clone();
        Ok(())
    }

    fn applied_list(&self) -> Vec<Applied> {
        self.next
            .iter()
            .map(|((topic, partition), next)| Applied {
                topic: topic.to_string(),
                partition: *partition,
                next: *next,
            })
            .collect()
    }

    /// Reads a key of store `i` as the task sees it (buffered writes
    /// included).
    pub fn get(&self, i: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.stores[i].buffer().get(key)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::cell::RefCell;
    use std::sync::atomic::AtomicI64;

    use super::*;

    /// (topic, partition, key, value) of a changelog record.
    pub type Sent = (String, i32, Vec<u8>, Option<Vec<u8>>);

    /// A changelog in memory: acknowledges at once, in order.
    #[derive(Debug, Default)]
    pub struct MemoryChangelog {
        pub records: RefCell<Vec<Sent>>,
    }

    impl ChangelogWriter for MemoryChangelog {
        fn send(
            &self,
            topic: &str,
            partition: i32,
            key: &[u8],
            value: Option<&[u8]>,
        ) -> Result<(), RunError> {
            self.records.borrow_mut().push((
                topic.to_owned(),
                partition,
                key.to_vec(),
                value.map(<[u8]>::to_vec),
            ));
            Ok(())
        }

        fn send_with_receipt(
            &self,
            topic: &str,
            partition: i32,
            key: &[u8],
            value: &[u8],
        ) -> Result<Receipt, RunError> {
            self.send(topic, partition, key, Some(value))?;
            let offset = self.records.borrow().len() as i64 - 1;
            Ok(Arc::new(AtomicI64::new(offset)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::MemoryChangelog;
    use super::*;

    fn ctx(dir: &std::path::Path) -> StateContext {
        let settings = StateSettings {
            dir: dir.to_owned(),
            kind: StoreKind::Rocksdb,
            restore_chunk: 100,
            ..StateSettings::default()
        };
        StateContext::new("app", settings, None)
    }

    #[test]
    fn a_commit_sends_data_then_a_marker_and_persists_both_locally() {
        let dir = tempfile::tempdir().unwrap();
        let log = MemoryChangelog::default();
        {
            let mut t = TaskStores::open(&ctx(dir.path()), 2, &["counts"]).unwrap();
            assert!(!t.prepare(&log).unwrap(), "nothing to commit yet");
            t.buffer(0).put(b"a", b"1");
            t.buffer(0).put(b"b", b"1");
            t.accept([(Arc::from("in"), 2, 10)]);
            t.buffer(0).put(b"a", b"999"); // a batch that fails
            t.discard();
            assert!(t.prepare(&log).unwrap());
            t.mark(&log).unwrap();
            t.persist().unwrap();
            assert!(!t.prepare(&log).unwrap(), "committed already");
        }
        let records = log.records.borrow();
        assert_eq!(records.len(), 3);
        assert!(
            records
                .iter()
                .all(|r| r.0 == "app-counts-changelog" && r.1 == 2)
        );
        assert_eq!(records[0].2, b"\0a");
        assert_eq!(records[0].3.as_deref(), Some(&b"1"[..]));
        assert_eq!(records[2].2, b"\x01applied");

        // Reopened: the local store has the data, the offsets and the position.
        let t = TaskStores::open(&ctx(dir.path()), 2, &["counts"]).unwrap();
        assert_eq!(t.get(0, b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert!(t.has_applied(0, "in", 2, 9));
        assert!(!t.has_applied(0, "in", 2, 10));
        assert!(t.all_applied("in", 2, 0));
        assert!(
            !t.all_applied("in", 1, 0),
            "another partition is not covered"
        );
    }
}
