//! `sluice run`: a pipeline against a Kafka cluster, and the one-line
//! summary it (and `sluice dev`) prints at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use sluice::runner::{self, RunOptions, RunSummary};

use super::shared::{load, stop_on_signals};

/// Run a pipeline against a Kafka cluster until SIGINT or SIGTERM.
///
/// The consumer group is the pipeline's `application.id`; several
/// `sluice run` processes with the same pipeline share the partitions.
/// On SIGINT/SIGTERM the current batches finish, outputs are flushed and
/// offsets committed; a second signal exits at once.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The pipeline file (see docs/pipeline.md).
    pipeline: PathBuf,
    /// Kafka bootstrap servers, host:port[,host:port…].
    #[arg(long, env = "SLUICE_BROKERS")]
    brokers: String,
    /// How long to wait for the brokers at start, in seconds, before
    /// giving up with an error.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    connect_timeout: u64,
    /// Where local state stores live, instead of the pipeline's
    /// `[state] dir`. Each instance on one machine needs its own. A
    /// lost or corrupt directory is rebuilt from the changelog topics.
    #[arg(long, env = "SLUICE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// `sluice run`.
pub(crate) fn run(args: RunArgs) -> Result<()> {
    let RunArgs {
        pipeline,
        brokers,
        connect_timeout,
        state_dir,
    } = args;
    let (mut topology, plugins) = load(&pipeline)?;
    if let Some(dir) = state_dir {
        Arc::make_mut(&mut topology).state.dir = dir;
    }
    let stop = stop_on_signals()?;
    let summary = runner::run(
        topology,
        plugins,
        RunOptions {
            brokers,
            connect_timeout: Duration::from_secs(connect_timeout),
            stop,
            stop_at: None,
            idle_close_at_end: false,
            control: None,
            park: None,
        },
    )?;
    eprintln!("{}", summary_line(&summary));
    Ok(())
}

/// A run's counts, elapsed time and rate, on one line.
pub(super) fn summary_line(s: &RunSummary) -> String {
    let c = &s.counts;
    let secs = s.elapsed.as_secs_f64();
    let mut line = format!(
        "in {} · out {} · rejected {} · trapped {} · dead letters {}",
        c.records_in, c.records_out, c.rejected, c.trapped, c.dead_letters
    );
    if c.refused > 0 {
        line += &format!(" · refused by sinks {}", c.refused);
    }
    // Windowed pipelines: late records are dropped whether or not they
    // are dead-lettered, so they are counted here either way.
    if c.late_windows > 0 {
        line += &format!(
            " · late {} (partly {}; {} record-windows dropped)",
            c.late, c.partly_late, c.late_windows
        );
    }
    if c.timestamp_dropped > 0 {
        line += &format!(" · no timestamp {}", c.timestamp_dropped);
    }
    if c.repartitioned > 0 {
        line += &format!(" · through repartition topics {}", c.repartitioned);
    }
    if c.unkeyed > 0 {
        line += &format!(" · no key to repartition by {}", c.unkeyed);
    }
    if c.join_skipped > 0 {
        line += &format!(" · dropped by joins {}", c.join_skipped);
    }
    line += &format!(
        " · {:.1} s · {:.0} records/s",
        secs,
        c.records_in as f64 / secs.max(1e-9)
    );
    line
}
