//! `sluice dev`: the command line of [`sluice::dev`], which runs a
//! pipeline on an embedded broker with sample input.

use std::path::PathBuf;

use anyhow::Result;

use super::run::summary_line;
use super::shared::{load, stop_on_signals};

/// Run a pipeline on an embedded Kafka with sample input, and print
/// every output record.
///
/// Starts librdkafka's mock cluster in-process, creates the topics,
/// produces the input file (each record acknowledged by the broker),
/// runs the pipeline until every input record is processed and
/// committed, then prints a one-line summary. A run that ends short of
/// the input (stopped, or records unaccounted for) says so and exits
/// with an error.
///
/// Each input line is either an envelope — a JSON object with a
/// "value" member and only the members key, value, timestamp (ms),
/// headers (object) and topic — or a bare value: the line itself, byte
/// for byte, with a null key. Lines that are not JSON are bare values.
/// Output lines are `topic[partition]@offset  key=…  ts=…  value`, then
/// the headers; a null key prints as `(null)` and a tombstone (no
/// value) as `(tombstone)`, unlike a value that is the JSON `null`.
/// See docs/dev.md.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Sample input, one record per line (JSON Lines).
    #[arg(long, short)]
    input: PathBuf,
    /// Once the input is drained, close the windows of steps with
    /// `close.idle.after` as if that long had passed without input,
    /// and print their results before stopping.
    #[arg(long)]
    idle_close: bool,
    /// Keep the stores in DIR, as `[state] dir` would, instead of a
    /// temporary directory removed when the run ends. The embedded
    /// broker starts empty every run, so use a fresh DIR each time.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// `sluice dev`: prints each output record, then the summary line (also
/// of a run that ends short of its input, before its error).
pub(crate) fn dev(args: DevArgs) -> Result<()> {
    let DevArgs {
        pipeline,
        input,
        idle_close,
        state_dir,
    } = args;
    let (topology, plugins) = load(&pipeline)?;
    let opts = sluice::dev::DevOptions {
        stop: stop_on_signals()?,
        idle_close,
        state_dir,
    };
    match sluice::dev::run(topology, plugins, &input, opts, |p| println!("{p}")) {
        Ok(summary) => println!("{}", summary_line(&summary)),
        Err(e @ sluice::dev::DevError::Incomplete { .. }) => {
            if let sluice::dev::DevError::Incomplete { summary, .. } = &e {
                println!("{}", summary_line(summary));
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
