//! Stream threads: the workers tasks run on.
//!
//! Each thread owns the tasks routed to it (task `s_p`, sub-topology `s` on
//! partition `p`, goes to thread `(p + s) % num.stream.threads`), so batches
//! of one task are processed in order and a task's plugin instances are
//! never shared. Wasm runs here,
//! never on the thread that polls Kafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::{Counts, InputRecord, Output, Task, TaskId};
use crate::error::RunError;
use crate::kafka::producer::OutputProducer;
use crate::kafka::topic_limits::Refusal;
use crate::record::RecordRef;
use crate::state::task_state::StateContext;
use crate::topology::Topology;

/// Work for a stream thread.
#[derive(Debug)]
pub enum Work {
    /// Process a batch of one task's records (all of one partition number).
    Batch {
        /// The task.
        task: TaskId,
        /// The records, in offset order per topic.
        records: Vec<InputRecord>,
    },
    /// Drop these tasks: their partitions were revoked.
    Revoke(Vec<TaskId>),
    /// The stream time task `task` committed last; it starts there.
    Resume {
        /// The task.
        task: TaskId,
        /// Its committed stream time.
        stream_time: i64,
    },
    /// Run one phase of a commit on every task with stores, then reply.
    /// The reply says whether any task had something to commit.
    Commit(Phase, Sender<Result<bool, RunError>>),
    /// Close the windows of tasks idle for `close.idle.after` (with
    /// `force`, of every task with input, as if that long had passed),
    /// then reply with each closing task's counts and stream time.
    Tick {
        /// Whether to close without waiting for the wall clock.
        force: bool,
        /// Where the answer goes.
        reply: Sender<Vec<Ticked>>,
    },
    /// Send what every task's record caches hold (`cache.max.bytes`)
    /// downstream, then reply with the tasks that sent something.
    Flush(Sender<Vec<Ticked>>),
    /// Replace step `step`'s plugin in every task (and in tasks created
    /// later), then reply. Sent only when no batch is in flight.
    Swap {
        /// The step.
        step: usize,
        /// The new plugin.
        plugin: crate::plugin::Plugin,
        /// Answered once swapped.
        reply: Sender<()>,
    },
}

/// A task that closed its windows for idleness, or flushed its record
/// caches.
#[derive(Debug)]
pub struct Ticked {
    /// The task.
    pub task: TaskId,
    /// Its counts, or why closing failed.
    pub result: Result<Counts, RunError>,
    /// Its stream time after.
    pub stream_time: Option<i64>,
}

/// The phases of a commit of stateful tasks; the coordinator flushes the
/// producer between them (see [`crate::state::task_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Send buffered store writes to the changelogs.
    Prepare,
    /// Send the applied markers.
    Mark,
    /// Write the committed batches to the local stores.
    Persist,
}

/// What a stream thread reports after a batch.
#[derive(Debug)]
pub struct Done {
    /// The task.
    pub task: TaskId,
    /// Next offset to commit per (topic, partition), when the batch succeeded.
    pub offsets: Vec<(Arc<str>, i32, i64)>,
    /// Counts, or why the batch failed.
    pub result: Result<Counts, RunError>,
    /// The task's stream time after the batch.
    pub stream_time: Option<i64>,
}

impl Output for &OutputProducer {
    fn send(&mut self, topic: &str, record: RecordRef<'_>) -> Result<(), RunError> {
        OutputProducer::send(self, topic, record)
    }

    fn refusal(&self, topic: &str, record: RecordRef<'_>) -> Option<Refusal> {
        OutputProducer::refusal(self, topic, record)
    }
}

/// A running stream thread.
#[derive(Debug)]
pub struct StreamThread {
    /// Where to send work.
    pub work: Sender<Work>,
    handle: JoinHandle<()>,
}

impl StreamThread {
    /// Starts thread `index`.
    pub fn spawn(
        index: usize,
        topology: Arc<Topology>,
        plugins: Arc<crate::plugins::Plugins>,
        state: Option<Arc<StateContext>>,
        producer: Arc<OutputProducer>,
        done: Sender<Done>,
    ) -> StreamThread {
        // A little slack keeps the thread busy while the poller dispatches.
        // Small on purpose: a commit waits for every queued batch. It
        // costs threads their parallelism, though: the poller blocks on a
        // full queue, and a fetch brings one partition's records in a run,
        // so it waits on one thread while another has nothing to do (two
        // threads on two partitions measured 56 % busy each). Room for 32
        // batches gave 80 % each, but then one commit took the whole
        // queue, up to 32 × `max.batch.records` records. The fix is to
        // pause a backlogged task's partitions rather than block (issue 16).
        let (work, rx) = crossbeam_channel::bounded(4);
        let handle = std::thread::Builder::new()
            .name(format!("stream-{index}"))
            .spawn(move || {
                run(
                    rx,
                    done,
                    Shared {
                        topology,
                        plugins: (*plugins).clone(),
                        state,
                        producer,
                    },
                )
            })
            .expect("spawning a thread");
        StreamThread { work, handle }
    }

    /// Closes the work queue and waits for the thread to finish.
    pub fn join(self) -> Result<(), RunError> {
        drop(self.work);
        self.handle
            .join()
            .map_err(|_| RunError::Thread("a stream thread panicked".into()))
    }
}

enum Slot {
    Live(Box<Task>),
    /// A batch of this task failed; later batches are not processed, so
    /// their offsets are never committed past the failure. The task (if it
    /// started) is kept so that the state of the batches before the
    /// failure is committed with their offsets.
    Failed(Option<Box<Task>>),
}

impl Slot {
    fn task(&mut self) -> Option<&mut Task> {
        match self {
            Slot::Live(t) | Slot::Failed(Some(t)) => Some(t),
            Slot::Failed(None) => None,
        }
    }
}

/// What every task of a thread shares.
struct Shared {
    topology: Arc<Topology>,
    /// This thread's copy: a swap replaces a step's plugin in it.
    plugins: crate::plugins::Plugins,
    state: Option<Arc<StateContext>>,
    producer: Arc<OutputProducer>,
}

fn run(rx: Receiver<Work>, done: Sender<Done>, mut shared: Shared) {
    let mut tasks: HashMap<TaskId, Slot> = HashMap::new();
    let mut resume: HashMap<TaskId, i64> = HashMap::new();
    for work in rx {
        match work {
            Work::Revoke(ids) => {
                for id in ids {
                    tasks.remove(&id);
                    resume.remove(&id);
                }
            }
            Work::Resume { task, stream_time } => {
                resume.insert(task, stream_time);
            }
            Work::Commit(phase, reply) => {
                let _ = reply.send(commit_phase(&mut tasks, phase, &shared.producer));
            }
            Work::Swap {
                step,
                plugin,
                reply,
            } => {
                for slot in tasks.values_mut() {
                    if let Some(t) = slot.task() {
                        t.swap_plugin(step, plugin.clone());
                    }
                }
                shared.plugins.steps[step] = Some(plugin);
                let _ = reply.send(());
            }
            Work::Tick { force, reply } => {
                let ticked = each_task(&mut tasks, &shared.producer, false, |t, out| {
                    t.close_idle(force, out)
                });
                let _ = reply.send(ticked);
            }
            Work::Flush(reply) => {
                // A failed task too: its earlier batches are committed,
                // and what they cached goes out first.
                let flushed = each_task(&mut tasks, &shared.producer, true, Task::flush_caches);
                let _ = reply.send(flushed);
            }
            Work::Batch { task, records } => {
                // A task that cannot start fails its first batch; one
                // batch, one report.
                let mut start_failure = None;
                let slot = tasks.entry(task).or_insert_with(|| {
                    match Task::new(
                        task,
                        Arc::clone(&shared.topology),
                        &shared.plugins,
                        shared.state.as_deref(),
                    ) {
                        Ok(mut t) => {
                            t.resume_stream_time(resume.remove(&task));
                            Slot::Live(Box::new(t))
                        }
                        Err(e) => {
                            start_failure = Some(e);
                            Slot::Failed(None)
                        }
                    }
                });
                let result = match (start_failure, &mut *slot) {
                    (Some(e), _) => Err(e),
                    (None, Slot::Live(t)) => {
                        let mut out: &OutputProducer = &shared.producer;
                        t.process(&records, &mut out)
                    }
                    (None, Slot::Failed(_)) => Err(RunError::Thread(format!(
                        "task {task} stopped after an earlier failure"
                    ))),
                };
                if result.is_err()
                    && let Slot::Live(t) = std::mem::replace(slot, Slot::Failed(None))
                {
                    *slot = Slot::Failed(Some(t));
                }
                let offsets = if result.is_ok() {
                    next_offsets(&records)
                } else {
                    Vec::new()
                };
                let stream_time = slot.task().and_then(|t| t.stream_time());
                if done
                    .send(Done {
                        task,
                        offsets,
                        result,
                        stream_time,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Runs `work` on every live task (and, with `failed`, on each task that
/// failed a batch after it started); a task it fails is failed. The tasks
/// it did something in, with their counts (or the error).
fn each_task(
    tasks: &mut HashMap<TaskId, Slot>,
    producer: &OutputProducer,
    failed: bool,
    work: impl Fn(&mut Task, &mut dyn Output) -> Result<Option<Counts>, RunError>,
) -> Vec<Ticked> {
    let mut ticked = Vec::new();
    for (&task, slot) in tasks.iter_mut() {
        let t = match slot {
            Slot::Live(t) => t,
            Slot::Failed(Some(t)) if failed => t,
            Slot::Failed(_) => continue,
        };
        let mut out: &OutputProducer = producer;
        let result = match work(t, &mut out) {
            Ok(None) => continue,
            Ok(Some(counts)) => Ok(counts),
            Err(e) => Err(e),
        };
        let stream_time = t.stream_time();
        if result.is_err()
            && let Slot::Live(t) = std::mem::replace(slot, Slot::Failed(None))
        {
            *slot = Slot::Failed(Some(t));
        }
        ticked.push(Ticked {
            task,
            result,
            stream_time,
        });
    }
    ticked
}

/// Runs one commit phase on every task that has stores.
fn commit_phase(
    tasks: &mut HashMap<TaskId, Slot>,
    phase: Phase,
    producer: &OutputProducer,
) -> Result<bool, RunError> {
    let mut any = false;
    for slot in tasks.values_mut() {
        let Some(stores) = slot.task().and_then(Task::stores) else {
            continue;
        };
        match phase {
            Phase::Prepare => any |= stores.prepare(producer)?,
            Phase::Mark => stores.mark(producer)?,
            Phase::Persist => stores.persist()?,
        }
    }
    Ok(any)
}

/// The offset after the last record of each (topic, partition).
pub(crate) fn next_offsets(records: &[InputRecord]) -> Vec<(Arc<str>, i32, i64)> {
    next_after(records.iter().map(|r| (&r.topic, r.partition, r.offset)))
}

/// The position after the last of `positions` in each (topic, partition).
pub(crate) fn next_after<'a>(
    positions: impl Iterator<Item = (&'a Arc<str>, i32, i64)>,
) -> Vec<(Arc<str>, i32, i64)> {
    let mut next: Vec<(Arc<str>, i32, i64)> = Vec::new();
    for (topic, partition, at) in positions {
        match next
            .iter_mut()
            .find(|(t, p, _)| t == topic && *p == partition)
        {
            Some(entry) => entry.2 = entry.2.max(at + 1),
            None => next.push((Arc::clone(topic), partition, at + 1)),
        }
    }
    next
}
