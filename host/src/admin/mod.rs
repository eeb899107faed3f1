//! `sluice serve`: many pipelines in one long-running process, managed
//! through an HTTP admin API.
//!
//! - [`pipelines`]: the pipelines a host runs: deploy, status, pause and
//!   resume, plugin swaps (and their rollback), removal, each scoped to
//!   its caller.
//! - [`tenants`]: who owns a pipeline: topic prefixes, state directory,
//!   plugin limits and quotas.
//! - [`auth`]: who calls: the operator's token, tenants' tokens.
//! - [`components`]: uploaded components, per owner; the host builds
//!   nothing.
//! - [`api`]: the HTTP admin API over them (axum), with Prometheus
//!   `/metrics`; [`client`] is what the CLI subcommands call it with.
//!
//! Each pipeline runs on threads of its own (a poll loop, its stream
//! threads); the API's async runtime never runs Wasm. A swap's component is
//! compiled and its `init` run on a blocking thread of the API, then the
//! running pipeline swaps it at a committed batch boundary
//! (`runner::control`). The security model: `docs/security.md`.

pub mod api;
pub mod auth;
pub mod client;
pub mod components;
pub mod pipelines;
pub mod tenants;

use std::path::{Path, PathBuf};

/// Where `sluice serve` keeps its data unless told: `$SLUICE_DATA_DIR`,
/// else `$XDG_DATA_HOME/sluice`, else `~/.local/share/sluice`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("sluice");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/sluice")
}

/// Reads a file of librdkafka properties: `key=value` lines; blank lines
/// and lines starting with `#` are skipped.
pub fn read_properties(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the Kafka properties file {}: {e}",
            path.display()
        )
    })?;
    parse_properties(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| format!("line {}: not `key=value`", i + 1))?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn properties_files_are_key_value_lines() {
        let p =
            super::parse_properties("# creds\nsecurity.protocol = SASL_SSL\n\nsasl.password=a=b\n")
                .unwrap();
        assert_eq!(
            p,
            vec![
                ("security.protocol".into(), "SASL_SSL".into()),
                ("sasl.password".into(), "a=b".into())
            ]
        );
        let e = super::parse_properties("ok=1\nnope\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
