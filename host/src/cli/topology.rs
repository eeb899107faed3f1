//! `sluice topology`: a pipeline's topology, as text or Graphviz.

use std::path::PathBuf;

use anyhow::Result;
use clap::ValueEnum;
use sluice::topology::{Topology, render};

/// Show a pipeline's topology: sources, steps, sinks, error policies.
#[derive(Debug, clap::Args)]
pub(crate) struct TopologyArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// `text` for the terminal; `dot` for Graphviz
    /// (`sluice topology p.toml --format dot | dot -Tsvg > p.svg`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Dot,
}

/// `sluice topology`.
pub(crate) fn topology(args: TopologyArgs) -> Result<()> {
    let TopologyArgs { pipeline, format } = args;
    let topology = Topology::load(&pipeline)?;
    match format {
        Format::Text => print!("{}", render::text(&topology)),
        Format::Dot => print!("{}", render::dot(&topology)),
    }
    Ok(())
}
