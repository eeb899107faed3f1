//! An attempt's start-up, in order: wait for the brokers, read the
//! sources' partition counts, make the changelogs ready (a stateful
//! pipeline), create the producer (transactional under exactly-once) and
//! learn the sinks' limits, spawn the stream threads behind a coordinator,
//! and subscribe the consumer. What it started is a [`PollLoop`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::coordinator::{Coordinator, RebalanceHandler, Routes};
use super::options::RunOptions;
use super::poll_loop::{PollLoop, lock};
use super::table_wait::TableWaits;
use crate::error::{KafkaError, RunError};
use crate::kafka::client_config::ClientSettings;
use crate::kafka::connect;
use crate::kafka::producer::OutputProducer;
use crate::kafka::transactions::transactional_id;
use crate::kafka::{partitioner, topic_limits, topics};
use crate::operator::repartition;
use crate::plugin::Plugin;
use crate::state::changelog_topics::prepare_state;
use crate::state::global_table::GlobalReader;
use crate::state::task_state::StateContext;
use crate::task::Counts;
use crate::task::stream_thread::StreamThread;
use crate::topology::{Guarantee, Operation, Topology};

/// Starts an attempt whose coordinator counts on from `counts_before`;
/// `recovery` is the recovery it is, if it is one. `None` when told to
/// stop while waiting for the brokers: nothing started.
pub(super) fn start<'a>(
    topology: &Arc<Topology>,
    plugins: &crate::plugins::Plugins,
    running: &[Option<Plugin>],
    opts: &'a RunOptions,
    counts_before: Counts,
    recovery: Option<u32>,
) -> Result<Option<PollLoop<'a>>, RunError> {
    let topology = Arc::clone(topology);
    let settings = ClientSettings::new(&opts.brokers, &topology.kafka);
    let Some(metadata) = connect::wait_for_brokers(&settings, opts.connect_timeout, &opts.stop)?
    else {
        return Ok(None);
    };
    let reading = source_topics(&topology);
    let external: Vec<String> = (topology.sources.iter())
        .filter(|s| s.repartition.is_none())
        .map(|s| s.topic.clone())
        .collect();
    let counts = connect::partition_counts(&metadata, &opts.brokers, &external)?;
    let per_sub = topology.partition_counts(|topic| {
        (counts.iter())
            .find(|(t, _)| t == topic)
            .map(|(_, n)| *n as i32)
    })?;
    let joined = joined_topics(&topology, &per_sub);
    if !joined.is_empty() {
        partitioner::check_keys(&settings, &joined, opts.connect_timeout)?;
    }
    let specs = repartition::topics(&topology, &per_sub);
    if !specs.is_empty() {
        topics::create_missing(&settings, &specs, opts.connect_timeout)?;
    }
    let has_globals = topology.global_tables().next().is_some();
    let state = if topology.is_stateful() {
        let stores: Vec<(&str, i32)> = (topology.stores())
            .map(|(store, _)| {
                let sub = topology.subtopology_of_store(store).unwrap_or(0);
                (store, per_sub[sub])
            })
            .collect();
        Some(prepare_state(
            &topology.application_id,
            &stores,
            &topology.state,
            &settings,
            opts.connect_timeout,
        )?)
    } else if has_globals {
        Some(StateContext::new(
            &topology.application_id,
            topology.state.clone(),
            Some(settings.clone()),
        ))
    } else {
        None
    };
    let state = state.map(|s| Arc::new(s.with_global_tables(topology.global_specs())));
    let globals = match &state {
        Some(state) if has_globals => {
            match GlobalReader::restore(
                Arc::clone(&state.globals),
                &settings,
                (
                    &topology.application_id,
                    topology.errors.rejected == crate::topology::ErrorPolicy::Fail,
                ),
                &opts.stop,
            )? {
                Some(reader) => Some(reader),
                None => return Ok(None),
            }
        }
        _ => None,
    };
    let producer = output_producer(&topology, &settings, recovery)?;
    learn_sink_limits(&topology, &settings, &producer, opts.connect_timeout);
    let coordinator = spawn_threads(
        &topology,
        plugins,
        running,
        state.clone(),
        &producer,
        counts_before,
        recovery,
    );
    let consumer = subscribe(&topology, &settings, &coordinator, &reading)?;
    tracing::info!(
        application = %topology.application_id,
        sources = %reading.join(","),
        brokers = %opts.brokers,
        threads = topology.processing.num_stream_threads,
        "running"
    );
    Ok(Some(PollLoop::new(
        topology,
        opts,
        producer,
        state,
        coordinator,
        consumer,
        (&reading, globals),
    )))
}

/// The topics a join reads by key that the pipeline does not write itself
/// (its repartition topics are murmur2-partitioned by Sluice), with their
/// partition counts.
fn joined_topics(topology: &Topology, per_sub: &[i32]) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = Vec::new();
    for (i, step) in topology.steps.iter().enumerate() {
        // A global table is looked up whole: its join needs no partitioning.
        let joins = matches!(step.op, Operation::Join(_) | Operation::ForeignKey(_));
        if !joins || step.global_table().is_some() {
            continue;
        }
        let n = topology.subtopology_of_step(i);
        for &s in &topology.subtopologies[n].sources {
            let source = &topology.sources[s];
            if source.repartition.is_none() && !out.iter().any(|(t, _)| *t == source.topic) {
                out.push((source.topic.clone(), per_sub[n]));
            }
        }
    }
    out
}

/// Every topic the pipeline reads, each once: its sources' and its
/// repartition topics.
fn source_topics(topology: &Topology) -> Vec<String> {
    let mut topics: Vec<String> = (topology.sources.iter())
        .filter(|s| !s.is_global())
        .map(|s| s.topic.clone())
        .collect();
    topics.sort();
    topics.dedup();
    topics
}

/// The producer the stream threads share: under exactly-once a
/// transactional one (see [`crate::kafka::transactions`]), and for a
/// tenant restricted to its topic prefixes.
fn output_producer(
    topology: &Topology,
    settings: &ClientSettings,
    recovery: Option<u32>,
) -> Result<Arc<OutputProducer>, RunError> {
    let producer = match topology.processing.guarantee {
        Guarantee::AtLeastOnce => OutputProducer::new(settings, &topology.application_id)?,
        Guarantee::ExactlyOnce => {
            let id = transactional_id(
                &topology.application_id,
                &topology.state.dir,
                topology.is_stateful(),
            );
            let producer = OutputProducer::transactional(settings, &topology.application_id, &id)?;
            match recovery {
                None => {
                    tracing::info!(transactional_id = %id, "exactly-once: each commit is a transaction")
                }
                Some(n) => tracing::info!(
                    transactional_id = %id,
                    recovery = n,
                    "exactly-once: a new producer took over the transactional.id"
                ),
            }
            producer
        }
    };
    Ok(Arc::new(match &topology.topic_prefixes {
        Some(prefixes) => producer.restrict_to(prefixes.clone()),
        None => producer,
    }))
}

/// Reads the limits of the topics the run writes to (sinks, dead letters)
/// and gives them to the producer, so that an output the broker would
/// refuse meets the `refused` policy ([`crate::kafka::topic_limits`]).
/// Before the first record: a real broker answers in milliseconds. One
/// that cannot answer leaves only the producer's own limit checked.
fn learn_sink_limits(
    topology: &Topology,
    settings: &ClientSettings,
    producer: &OutputProducer,
    timeout: Duration,
) {
    let mut topics: Vec<String> = topology.sinks.iter().map(|s| s.topic.clone()).collect();
    if topology.uses_dlq() {
        topics.push(topology.errors.dlq_topic.clone());
    }
    topics.sort();
    topics.dedup();
    match topic_limits::describe(settings, &topics, timeout.min(Duration::from_secs(10))) {
        Ok(Some(found)) => {
            for (topic, l) in &found {
                tracing::debug!(topic = %topic, max_message_bytes = ?l.max_message_bytes, timestamp_after_max_ms = ?l.after_max_ms, timestamp_before_max_ms = ?l.before_max_ms, log_append_time = l.log_append_time, "sink topic limits");
            }
            producer.limits().learn(found);
        }
        Ok(None) => tracing::debug!(
            "the embedded broker cannot describe topics: outputs are checked against the producer's message.max.bytes only"
        ),
        Err(e) => tracing::warn!(
            "cannot read the sink topics' configs ({e}): outputs are checked against the producer's message.max.bytes only, and a record the broker refuses stops the run"
        ),
    }
}

/// Spawns the stream threads, each running the plugins of `running`,
/// behind a new coordinator that counts on from `counts_before`.
fn spawn_threads(
    topology: &Arc<Topology>,
    plugins: &crate::plugins::Plugins,
    running: &[Option<Plugin>],
    state: Option<Arc<StateContext>>,
    producer: &Arc<OutputProducer>,
    counts_before: Counts,
    recovery: Option<u32>,
) -> Arc<Mutex<Coordinator>> {
    let plugins = Arc::new(crate::plugins::Plugins {
        steps: running.to_vec(),
        ..plugins.clone()
    });
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let threads = (0..topology.processing.num_stream_threads)
        .map(|i| {
            StreamThread::spawn(
                i,
                Arc::clone(topology),
                Arc::clone(&plugins),
                state.clone(),
                Arc::clone(producer),
                done_tx.clone(),
            )
        })
        .collect();
    drop(done_tx);
    let mut coordinator = Coordinator::new(
        threads,
        done_rx,
        Arc::clone(producer),
        topology.processing.max_batch_records,
        state.is_some(),
        Routes::new(topology),
        TableWaits::new(topology),
    );
    coordinator.counts = counts_before;
    coordinator.recovery = recovery;
    Arc::new(Mutex::new(coordinator))
}

/// Creates the consumer, whose rebalance callback shares `coordinator`,
/// and subscribes it to `topics`. If either fails, the stream threads are
/// stopped first.
fn subscribe(
    topology: &Topology,
    settings: &ClientSettings,
    coordinator: &Arc<Mutex<Coordinator>>,
    topics: &[String],
) -> Result<BaseConsumer<RebalanceHandler>, RunError> {
    let stop_threads = || {
        let threads = std::mem::take(&mut lock(coordinator).threads);
        for t in threads {
            let _ = t.join();
        }
    };
    let consumer: BaseConsumer<RebalanceHandler> = match settings
        .consumer(&topology.application_id)
        .create_with_context(RebalanceHandler {
            coordinator: Arc::clone(coordinator),
        }) {
        Ok(c) => c,
        Err(e) => {
            stop_threads();
            return Err(KafkaError::client("creating the consumer")(e).into());
        }
    };
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&topic_refs) {
        stop_threads();
        return Err(KafkaError::client("subscribing to the source topics")(e).into());
    }
    Ok(consumer)
}
