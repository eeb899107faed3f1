//! Control of a running pipeline from outside its poll loop: plugin swaps
//! at a committed batch boundary, pause and resume, and the live status
//! the poll loop publishes.
//!
//! A swap is prepared off the hot path ([`prepare_swap`]: the component is
//! compiled, its world checked against the step's, and its `init` run
//! with the step's config), then queued. The poll loop takes it between
//! two polls: it waits for every batch in flight, commits (outputs
//! acknowledged, stores and offsets committed), and has every stream
//! thread replace the step's plugin. Records at or after the committed
//! offsets — polled already or not — go to the new version; none is
//! skipped or processed twice, and the stores stay as they are.
//!
//! The poll loop's side is here too: [`serve_requests`] carries out what
//! was queued, between two polls, and [`set_paused`] pauses or resumes
//! consumption (for a request, or a quarantine).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::coordinator::Coordinator;
use super::quarantine::Quarantine;
use crate::error::{KafkaError, RunError};
use crate::plugin::{Plugin, PluginKind};
use crate::topology::{Operation, Topology};

/// A handle on a running pipeline; clones share it.
#[derive(Debug, Clone)]
pub struct Control {
    requests: Arc<Mutex<VecDeque<Request>>>,
    live: Arc<Mutex<Live>>,
    /// Ready when a request was queued: wakes a parked pipeline.
    queued: (Sender<()>, Receiver<()>),
}

impl Default for Control {
    fn default() -> Control {
        Control {
            requests: Arc::default(),
            live: Arc::default(),
            queued: crossbeam_channel::bounded(1),
        }
    }
}

/// What the poll loop last published.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Counts so far.
    pub counts: crate::task::Counts,
    /// Paused: assigned, but not consuming.
    pub paused: bool,
    /// Why it was quarantined (paused for repeated traps), if it was.
    pub quarantined: Option<String>,
    /// Records on its partitions not yet processed and committed, as last
    /// measured (every two seconds).
    pub lag: Option<u64>,
    /// Parked: no input for a while, so its Kafka clients and threads
    /// are let go until a topic it reads moves (`runner::park`).
    pub parked: bool,
}

/// What the poll loop is asked to do.
#[derive(Debug)]
pub(super) enum Request {
    Swap {
        step: usize,
        plugin: Plugin,
        reply: Sender<Result<Swapped, String>>,
    },
    /// Stop consuming (in-flight work is finished and committed) or start
    /// again; the group membership stays.
    Pause {
        pause: bool,
        reply: Sender<Result<(), String>>,
    },
}

/// A swap that took place.
#[derive(Debug, Clone)]
pub struct Swapped {
    /// The step.
    pub step: String,
    /// Digest of the plugin replaced.
    pub old_digest: String,
    /// Digest of the plugin now running.
    pub new_digest: String,
    /// The swap point: per (topic, partition), the first offset the new
    /// version processes. Every record before it was processed, and its
    /// outputs acknowledged, by the old one.
    pub boundary: Vec<(String, i32, i64)>,
    /// How long the poll loop stood still for it (drain, commit, swap).
    pub pause: Duration,
}

impl Control {
    /// A handle for a pipeline that has not started yet.
    pub fn new() -> Control {
        Control::default()
    }

    /// Queues a swap of step `step` (its index in the topology) to a
    /// plugin from [`prepare_swap`]; the answer arrives on the returned
    /// channel once the running pipeline has swapped, or says why not.
    pub fn swap(&self, step: usize, plugin: Plugin) -> Receiver<Result<Swapped, String>> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.requests
            .lock()
            .expect("not poisoned")
            .push_back(Request::Swap {
                step,
                plugin,
                reply,
            });
        let _ = self.queued.0.try_send(());
        answer
    }

    /// Queues a pause (`true`) or a resume (`false`); answered once done.
    pub fn pause(&self, pause: bool) -> Receiver<Result<(), String>> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.requests
            .lock()
            .expect("not poisoned")
            .push_back(Request::Pause { pause, reply });
        let _ = self.queued.0.try_send(());
        answer
    }

    /// Wakes the pipeline if it is parked, to see its stop flag (set it
    /// first) or its requests.
    pub fn wake(&self) {
        let _ = self.queued.0.try_send(());
    }

    /// Ready once a request was queued (a parked pipeline waits on it).
    pub(super) fn queued(&self) -> &Receiver<()> {
        &self.queued.1
    }

    /// Whether requests wait to be served.
    pub(super) fn has_requests(&self) -> bool {
        !self.requests.lock().expect("not poisoned").is_empty()
    }

    /// The status the running pipeline last published.
    pub fn live(&self) -> Live {
        self.live.lock().expect("not poisoned").clone()
    }

    /// Publishes the status (the poll loop, once per round).
    pub(super) fn publish(&self, update: impl FnOnce(&mut Live)) {
        update(&mut self.live.lock().expect("not poisoned"));
    }

    /// Takes the queued requests.
    pub(super) fn take(&self) -> Vec<Request> {
        self.requests
            .lock()
            .expect("not poisoned")
            .drain(..)
            .collect()
    }
}

/// Carries out the requests queued on `control` between two polls.
pub(super) fn serve_requests<C: ConsumerContext>(
    control: &Control,
    topology: &Topology,
    running: &mut [Option<Plugin>],
    quarantine: &mut Quarantine,
    c: &mut Coordinator,
    consumer: &BaseConsumer<C>,
) -> Result<(), RunError> {
    for request in control.take() {
        match request {
            Request::Swap {
                step,
                plugin,
                reply,
            } => swap(c, consumer, topology, running, step, plugin, reply)?,
            Request::Pause { pause, reply } => {
                pause_or_resume(control, quarantine, c, consumer, pause, reply)?
            }
        }
    }
    control.publish(|l| l.counts = c.counts);
    Ok(())
}

/// Swaps step `step` (of `running`) to `plugin` at a batch boundary, and
/// replies with the [`Swapped`] (or why not). The error is fatal.
fn swap<C: ConsumerContext>(
    c: &mut Coordinator,
    consumer: &BaseConsumer<C>,
    topology: &Topology,
    running: &mut [Option<Plugin>],
    step: usize,
    plugin: Plugin,
    reply: Sender<Result<Swapped, String>>,
) -> Result<(), RunError> {
    let started = Instant::now();
    // The batch boundary: everything polled before is done,
    // its outputs acknowledged and its offsets committed.
    c.drain();
    if let Err(e) = c.commit(consumer) {
        let _ = reply.send(Err(format!("the commit before the swap failed: {e}")));
        return Err(e);
    }
    c.swap_plugin(step, &plugin)?;
    let old = running[step]
        .replace(plugin.clone())
        .map_or_else(|| "none".to_owned(), |p| p.digest().to_owned());
    let mut boundary: Vec<(String, i32, i64)> = c
        .committed()
        .iter()
        .map(|((t, p), o)| (t.to_string(), *p, *o))
        .collect();
    boundary.sort();
    let swapped = Swapped {
        step: topology.steps[step].name.clone(),
        old_digest: old,
        new_digest: plugin.digest().to_owned(),
        boundary,
        pause: started.elapsed(),
    };
    tracing::info!(
        step = %swapped.step,
        from = %&swapped.old_digest[..swapped.old_digest.len().min(12)],
        to = %&swapped.new_digest[..12],
        pause_ms = swapped.pause.as_secs_f64() * 1e3,
        "plugin swapped"
    );
    let _ = reply.send(Ok(swapped));
    Ok(())
}

/// Pauses (`pause`) or resumes consumption as asked, publishes it (a
/// resume clears a quarantine), and replies. The error is fatal (the
/// commit before it failed); the pause's own failure is only replied.
fn pause_or_resume<C: ConsumerContext>(
    control: &Control,
    quarantine: &mut Quarantine,
    c: &mut Coordinator,
    consumer: &BaseConsumer<C>,
    pause: bool,
    reply: Sender<Result<(), String>>,
) -> Result<(), RunError> {
    let result = match set_paused(c, consumer, pause) {
        Ok(result) => result,
        Err(e) => {
            let _ = reply.send(Err(format!("the commit before pausing failed: {e}")));
            return Err(e);
        }
    };
    match result {
        Ok(()) => {
            if !pause {
                quarantine.clear();
            }
            control.publish(|l| {
                l.paused = pause;
                if !pause {
                    l.quarantined = None;
                }
            });
            tracing::info!(
                paused = pause,
                "consumption {}",
                if pause { "paused" } else { "resumed" }
            );
            let _ = reply.send(Ok(()));
        }
        Err(e) => {
            let _ = reply.send(Err(e.to_string()));
        }
    }
    Ok(())
}

/// Finishes and commits the work in flight, then stops (`pause`) or
/// starts again consuming the assigned partitions; the group membership
/// stays. With `pause` false and nothing paused, it only commits. The outer
/// error is fatal (the commit failed); the inner one is the pause's own.
pub(super) fn set_paused<C: ConsumerContext>(
    c: &mut Coordinator,
    consumer: &BaseConsumer<C>,
    pause: bool,
) -> Result<Result<(), KafkaError>, RunError> {
    c.drain();
    c.commit(consumer)?;
    let assignment = consumer.assignment().map_err(KafkaError::client(
        "reading the assignment to pause or resume",
    ))?;
    let result = if pause {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    if result.is_ok() {
        c.paused = pause;
        if !pause {
            c.table_waits.hold_again(consumer, &assignment);
        }
    }
    Ok(result.map_err(KafkaError::client(if pause {
        "pausing consumption"
    } else {
        "resuming consumption"
    })))
}

/// Checks that the component at `path` may replace step `step_name`'s
/// plugin: it loads, it is of the step's kind (a processor for a
/// processor step, an aggregator for an aggregation), and its `init`
/// accepts the step's config. Returns the step's index and the plugin.
pub fn prepare_swap(
    engine: &wasmtime::Engine,
    topology: &Topology,
    step_name: &str,
    path: &std::path::Path,
) -> Result<(usize, Plugin), String> {
    let (index, step) = topology
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.name == step_name)
        .ok_or_else(|| {
            format!(
                "the pipeline has no step `{step_name}` (steps: {})",
                topology
                    .steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let wanted = match &step.op {
        Operation::Process(_) => PluginKind::Processor,
        Operation::Aggregate { .. } if step.plugin().is_some() => PluginKind::Aggregator,
        Operation::Aggregate { .. } => {
            return Err(format!(
                "step `{step_name}` is the built-in count; it has no plugin to swap"
            ));
        }
        Operation::Join(_) if step.plugin().is_some() => PluginKind::Joiner,
        Operation::Join(_) => {
            return Err(format!(
                "step `{step_name}` joins with a built-in joiner; it has no plugin to swap"
            ));
        }
        Operation::ForeignKey(_) => {
            return Err(format!(
                "step `{step_name}` is a part Sluice added to a foreign-key join; it has no plugin to swap"
            ));
        }
    };
    let plugin = crate::plugins::limited(
        Plugin::load(engine, step_name, path).map_err(|e| e.to_string())?,
        topology,
    );
    if plugin.kind() != wanted {
        return Err(format!(
            "{} exports {}, but step `{step_name}` runs {}",
            path.display(),
            plugin.kind().interface(),
            wanted.interface()
        ));
    }
    // Its init, with the step's config, off the hot path: a plugin that
    // refuses it never replaces one that runs.
    plugin
        .instantiate(&step.config)
        .map_err(|e| format!("the new plugin failed to start: {e}"))?;
    Ok((index, plugin))
}
