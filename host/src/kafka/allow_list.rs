//! The Kafka client properties a tenant's pipeline may set under `sluice
//! serve`.
//!
//! librdkafka's properties reach far beyond tuning: `plugin.library.paths`
//! loads a shared library into the process, `ssl.*.location` read host
//! files, `sasl.kerberos.kinit.cmd` runs a command, `bootstrap.servers`
//! points at another cluster, `group.id` and `transactional.id` take
//! another application's identity, `debug` floods the host's log. A
//! tenant may set only properties that tune its own clients, each within
//! bounds; anything else is refused at deploy, naming the property and
//! what it would reach. The operator's settings (brokers, security,
//! credentials) come from `sluice serve`'s command line, never from a
//! pipeline. `sluice run` and `sluice dev` apply a pipeline's `[kafka]`
//! table as it is: there the user is the operator.

/// What a property's value may be.
#[derive(Debug, Clone, Copy)]
enum Allowed {
    /// An integer within bounds (inclusive).
    Int(i64, i64),
    /// One of these words.
    OneOf(&'static [&'static str]),
}

/// Properties a tenant may set, with the values allowed. Bounds keep one
/// pipeline from reserving the host's memory (queue sizes) or holding its
/// clients for hours (timeouts).
const ALLOWED: &[(&str, Allowed)] = &[
    // Producer batching and compression.
    ("linger.ms", Allowed::Int(0, 5_000)),
    ("queue.buffering.max.ms", Allowed::Int(0, 5_000)),
    ("batch.size", Allowed::Int(1, 16 << 20)),
    ("batch.num.messages", Allowed::Int(1, 1_000_000)),
    ("queue.buffering.max.messages", Allowed::Int(1, 1_000_000)),
    ("queue.buffering.max.kbytes", Allowed::Int(1, 256 << 10)),
    (
        "compression.type",
        Allowed::OneOf(&["none", "gzip", "snappy", "lz4", "zstd"]),
    ),
    (
        "compression.codec",
        Allowed::OneOf(&["none", "gzip", "snappy", "lz4", "zstd"]),
    ),
    ("compression.level", Allowed::Int(-1, 12)),
    ("message.max.bytes", Allowed::Int(1_000, 16 << 20)),
    ("message.timeout.ms", Allowed::Int(1_000, 900_000)),
    ("transaction.timeout.ms", Allowed::Int(1_000, 900_000)),
    // Consumer fetching.
    ("fetch.min.bytes", Allowed::Int(1, 16 << 20)),
    ("fetch.wait.max.ms", Allowed::Int(0, 5_000)),
    ("fetch.max.bytes", Allowed::Int(1, 64 << 20)),
    ("max.partition.fetch.bytes", Allowed::Int(1, 16 << 20)),
    ("queued.min.messages", Allowed::Int(1, 1_000_000)),
    ("queued.max.messages.kbytes", Allowed::Int(1, 256 << 10)),
    ("fetch.queue.backoff.ms", Allowed::Int(0, 1_000)),
    ("auto.offset.reset", Allowed::OneOf(&["earliest", "latest"])),
    (
        "isolation.level",
        Allowed::OneOf(&["read_committed", "read_uncommitted"]),
    ),
    // Group membership.
    ("session.timeout.ms", Allowed::Int(6_000, 300_000)),
    ("heartbeat.interval.ms", Allowed::Int(1_000, 60_000)),
    ("max.poll.interval.ms", Allowed::Int(10_000, 3_600_000)),
];

/// Why a property is refused: what it would reach.
fn reach(key: &str) -> &'static str {
    let k = key.to_ascii_lowercase();
    if k.starts_with("plugin.") {
        "it loads a native library into the host process"
    } else if k.ends_with(".cmd") {
        "it runs a command on the host"
    } else if k.ends_with(".location")
        || k.ends_with(".path")
        || k.ends_with(".paths")
        || k.contains("keystore")
        || k.contains("truststore")
        || k.contains(".file")
    {
        "it names a file on the host"
    } else if k.starts_with("sasl.")
        || k.starts_with("ssl.")
        || k.contains("password")
        || k.contains("secret")
        || k.contains("oauthbearer")
        || k == "security.protocol"
    {
        "it is a credential or security setting, the operator's"
    } else if matches!(
        k.as_str(),
        "bootstrap.servers"
            | "metadata.broker.list"
            | "client.dns.lookup"
            | "broker.address.family"
            | "client.rack"
            | "metadata.recovery.strategy"
    ) {
        "it chooses the brokers, the operator's"
    } else if matches!(
        k.as_str(),
        "group.id" | "group.instance.id" | "transactional.id" | "client.id" | "group.protocol"
    ) {
        "it is an identity the host derives from the tenant"
    } else if matches!(
        k.as_str(),
        "debug" | "log_level" | "log.queue" | "log.thread.name" | "statistics.interval.ms"
    ) || k.starts_with("log.")
    {
        "it floods or redirects the host's log"
    } else if matches!(
        k.as_str(),
        "enable.idempotence"
            | "enable.auto.commit"
            | "enable.auto.offset.store"
            | "enable.partition.eof"
            | "partitioner"
            | "acks"
            | "request.required.acks"
    ) {
        "Sluice's delivery guarantees depend on it"
    } else {
        "it is not one of the tuning properties a tenant may set"
    }
}

/// Checks a tenant pipeline's `[kafka]` properties against the
/// allow-list; the first refused one is named, with why.
pub fn check(properties: &[(String, String)]) -> Result<(), String> {
    for (key, value) in properties {
        let Some((_, allowed)) = ALLOWED.iter().find(|(k, _)| *k == key) else {
            return Err(format!(
                "[kafka] `{key}` is refused under `sluice serve`: {}. A tenant may set only {}",
                reach(key),
                ALLOWED
                    .iter()
                    .map(|(k, _)| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let v = value.trim();
        match *allowed {
            Allowed::Int(lo, hi) => match v.parse::<i64>() {
                Ok(n) if (lo..=hi).contains(&n) => {}
                _ => {
                    return Err(format!(
                        "[kafka] `{key}` must be an integer from {lo} to {hi} under `sluice serve`, got `{}`",
                        shorten(v)
                    ));
                }
            },
            Allowed::OneOf(words) => {
                if !words.contains(&v) {
                    return Err(format!(
                        "[kafka] `{key}` must be one of {} under `sluice serve`, got `{}`",
                        words.join(", "),
                        shorten(v)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A value as quoted back in a message: at most 64 characters.
fn shorten(v: &str) -> String {
    match v.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: &str) -> Result<(), String> {
        check(&[(k.to_owned(), v.to_owned())])
    }

    #[test]
    fn tuning_within_bounds_passes_and_everything_else_is_named_with_its_reach() {
        one("linger.ms", "20").unwrap();
        one("compression.type", "zstd").unwrap();
        one("fetch.queue.backoff.ms", "10").unwrap();
        for (key, value, why) in [
            ("plugin.library.paths", "/tmp/evil.so", "native library"),
            ("sasl.kerberos.kinit.cmd", "touch /tmp/x", "runs a command"),
            ("ssl.ca.location", "/etc/shadow", "names a file"),
            ("ssl.keystore.location", "/k", "names a file"),
            ("sasl.password", "x", "credential"),
            ("security.protocol", "plaintext", "credential"),
            ("bootstrap.servers", "evil:9092", "chooses the brokers"),
            ("group.id", "ops.app", "identity"),
            ("transactional.id", "ops.app-1", "identity"),
            ("client.id", "ops", "identity"),
            ("debug", "all", "floods"),
            ("enable.auto.commit", "true", "guarantees"),
            ("socket.keepalive.enable", "true", "not one of the tuning"),
        ] {
            let e = one(key, value).unwrap_err();
            assert!(e.contains(&format!("`{key}`")) && e.contains(why), "{e}");
        }
        let e = one("linger.ms", "100000").unwrap_err();
        assert!(e.contains("from 0 to 5000"), "{e}");
        let e = one("queued.max.messages.kbytes", "2097151").unwrap_err();
        assert!(e.contains("from 1 to 262144"), "{e}");
        let e = one("compression.type", &"x".repeat(5000)).unwrap_err();
        assert!(e.len() < 300, "a long value is not echoed in full: {e}");
    }
}
