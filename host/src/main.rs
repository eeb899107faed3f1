//! The `sluice` command line: parses the arguments, sets up logging, and
//! hands the subcommand to its function in [`cli`].

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::plugin::PluginCommand;
use cli::tenant::TenantCommand;
use cli::{Cli, Command};

/// mimalloc, not the system's allocator: the data path allocates per
/// record (store keys and values, cached records), and glibc's `malloc`
/// and `free` took about a third of a stream thread's time in profiles of
/// windowed aggregations (README, § Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn")),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal; a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(cli.command) {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

/// Runs one subcommand.
fn run(command: Command) -> Result<()> {
    match command {
        Command::Run(args) => cli::run::run(args),
        Command::Dev(args) => cli::dev::dev(args),
        Command::Topology(args) => cli::topology::topology(args),
        Command::Plugin(PluginCommand::New(args)) => cli::plugin::new(args),
        Command::Plugin(PluginCommand::Test(args)) => cli::plugin::test(args),
        Command::Plugin(PluginCommand::Build(args)) => cli::plugin::build(args),
        Command::Plugin(PluginCommand::Inspect(args)) => cli::plugin::inspect(args),
        Command::Serve(args) => cli::serve::serve(args),
        Command::Deploy(args) => cli::admin::deploy(args),
        Command::Status(args) => cli::admin::status(args),
        Command::Swap(args) => cli::admin::swap(args),
        Command::Pause(args) => cli::admin::pause(args),
        Command::Resume(args) => cli::admin::resume(args),
        Command::Tenant(TenantCommand::Create(args)) => cli::tenant::create(args),
        Command::Tenant(TenantCommand::Show(args)) => cli::tenant::show(args),
        Command::Remove(args) => cli::admin::remove(args),
    }
}
