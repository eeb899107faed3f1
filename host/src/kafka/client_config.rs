//! Client settings that Sluice's guarantees depend on.

use rdkafka::ClientConfig;

use super::properties::{Handle, read_by};

/// Builds librdkafka configurations for one application.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    brokers: String,
    extra: Vec<(String, String)>,
}

impl ClientSettings {
    /// Settings for `brokers`, plus the pipeline's `[kafka]` table, which
    /// wins over Sluice's defaults except where a guarantee needs them.
    pub fn new(brokers: &str, extra: &[(String, String)]) -> Self {
        ClientSettings {
            brokers: brokers.to_owned(),
            extra: extra.to_vec(),
        }
    }

    /// The bootstrap servers.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// The brokers and the `[kafka]` properties a client of kind
    /// `handle` reads (`kafka/properties.rs`): librdkafka warns about the
    /// others.
    fn base(&self, handle: Handle) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in self.extra.iter().filter(|(k, _)| read_by(k, handle)) {
            c.set(k, v);
        }
        c
    }

    /// The consumer of an application: group = `application.id`; offsets
    /// are committed by Sluice only after the outputs they caused are
    /// acknowledged, so auto-commit and auto-store are off.
    ///
    /// `fetch.queue.backoff.ms` defaults to 10 ms, not librdkafka's
    /// 1,000: once its local queue holds `queued.min.messages`, librdkafka
    /// stops fetching for that long, and a pipeline that drains the queue
    /// faster sits idle the rest of the second (a whole `count` pipeline
    /// on a real broker: about 160,000 records/s with 1,000 ms, 400,000
    /// with 10; `cargo bench -p sluice --bench joins`, issue 16).
    pub fn consumer(&self, application_id: &str) -> ClientConfig {
        let mut c = self.base(Handle::Consumer);
        c.set("group.id", application_id)
            .set("client.id", format!("{application_id}-consumer"))
            .set_default("auto.offset.reset", "earliest")
            .set_default("isolation.level", "read_committed")
            .set_default("fetch.queue.backoff.ms", "10")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        c
    }

    /// The producer of an application: murmur2 partitioning (as Java
    /// clients do, so co-partitioning holds), idempotence for ordered
    /// retries.
    pub fn producer(&self, application_id: &str) -> ClientConfig {
        let mut c = self.base(Handle::Producer);
        c.set("client.id", format!("{application_id}-producer"))
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set_default("linger.ms", "5")
            .set_default("message.timeout.ms", "120000");
        c
    }

    /// A plain consumer, outside any group: for metadata, and for reading
    /// partitions it assigns itself (restore, global tables, sampling).
    pub fn plain(&self) -> ClientConfig {
        self.base(Handle::Consumer)
    }

    /// An admin client (creating, describing and purging topics), which
    /// librdkafka runs on a producer handle.
    pub fn admin(&self) -> ClientConfig {
        self.base(Handle::Producer)
    }
}

trait SetDefault {
    fn set_default(&mut self, key: &str, value: &str) -> &mut Self;
}

impl SetDefault for ClientConfig {
    fn set_default(&mut self, key: &str, value: &str) -> &mut Self {
        if self.get(key).is_none() {
            self.set(key, value);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarantees_win_over_user_settings_and_defaults_yield_to_them() {
        let s = ClientSettings::new(
            "b:1",
            &[
                ("enable.auto.commit".into(), "true".into()),
                ("linger.ms".into(), "50".into()),
                ("partitioner".into(), "consistent".into()),
            ],
        );
        let c = s.consumer("app");
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("group.id"), Some("app"));
        assert_eq!(c.get("fetch.queue.backoff.ms"), Some("10"));
        let tuned = ClientSettings::new("b:1", &[("fetch.queue.backoff.ms".into(), "500".into())]);
        assert_eq!(
            tuned.consumer("app").get("fetch.queue.backoff.ms"),
            Some("500")
        );
        assert_eq!(
            s.producer("app").get("fetch.queue.backoff.ms"),
            None,
            "consumers only"
        );
        // Each client gets the `[kafka]` properties of its kind and the
        // shared ones, so librdkafka has nothing to warn about.
        let mixed = ClientSettings::new(
            "b:1",
            &[
                ("fetch.wait.max.ms".into(), "20".into()),
                ("batch.size".into(), "65536".into()),
                ("security.protocol".into(), "plaintext".into()),
            ],
        );
        for (c, reads, not) in [
            (mixed.consumer("app"), "fetch.wait.max.ms", "batch.size"),
            (mixed.plain(), "fetch.wait.max.ms", "batch.size"),
            (mixed.producer("app"), "batch.size", "fetch.wait.max.ms"),
            (mixed.admin(), "batch.size", "fetch.wait.max.ms"),
        ] {
            assert!(c.get(reads).is_some() && c.get(not).is_none(), "{c:?}");
            assert_eq!(c.get("security.protocol"), Some("plaintext"));
        }
        let p = s.producer("app");
        assert_eq!(p.get("partitioner"), Some("murmur2_random"));
        assert_eq!(p.get("linger.ms"), Some("50"));
        assert_eq!(p.get("bootstrap.servers"), Some("b:1"));
    }
}
