//! Joins end to end, on the embedded broker with 4 partitions.
//!
//! Stream–table: 50 random inputs of the reference crate
//! (`sluice_reference::joins::events`: bounded disorder, null keys, null
//! values, one seed per key prefix) run through an inner and a left join
//! at once, each seed's outputs checked against the reference model
//! (`joins::stream_table::join`), which shares no code with the engine.
//!
//! The input goes in phases: in each, the table's records are produced and
//! committed, then the stream's, as the model is given them. Records of
//! both sides produced together could be polled in either order (and in
//! one call batch a task applies a table's records before it joins stream
//! records: docs/pipeline.md).

use std::collections::BTreeMap;

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::kafka::partitioner::partition_of;
use sluice_reference::joins::stream_stream::{self, Windows};
use sluice_reference::joins::{self, Event, Kind, Side};

use crate::support::{self, SluiceRun, wait_until};

const PARTITIONS: i32 = 4;
const SEEDS: u64 = 50;
const PHASES: usize = 6;

/// A joined output: (key, (left value, right value)).
type Joined = (Option<String>, (Option<String>, Option<String>));

/// Seed `seed`'s events with its keys and values prefixed `s<seed>-`, so
/// that seeds share no key and every output names its seed.
fn seeded(seed: u64) -> Vec<Event> {
    let tag = |s: &str| format!("s{seed}-{s}");
    (joins::events(seed, 60, 40).into_iter())
        .map(|e| Event {
            key: e.key.as_deref().map(tag),
            value: e.value.as_deref().map(tag),
            ..e
        })
        .collect()
}

/// `events` cut into `PHASES` runs, each with its table (right) records
/// first: the order in which they are produced, and given to the model.
fn phased(events: &[Event]) -> Vec<Vec<Event>> {
    let size = events.len().div_ceil(PHASES);
    (events.chunks(size))
        .map(|chunk| {
            let mut phase = chunk.to_vec();
            phase.sort_by_key(|e| e.side != Side::Right);
            phase
        })
        .collect()
}

/// The seed an output belongs to: from its left value, always present.
fn seed_of(joined: &Joined) -> u64 {
    let left = joined
        .1
        .0
        .as_deref()
        .expect("a stream-table result has its left value");
    left[1..left.find('-').unwrap()].parse().unwrap()
}

/// The join results in `topic`, by seed, sorted (each seed's own order
/// spans partitions).
fn results(brokers: &str, topic: &str) -> BTreeMap<u64, Vec<Joined>> {
    let mut by_seed: BTreeMap<u64, Vec<Joined>> = BTreeMap::new();
    for r in support::read_all(brokers, topic, PARTITIONS) {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        let side = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let key = r.key.map(|k| String::from_utf8(k).unwrap());
        let joined = (key, (side(&v["left"]), side(&v["right"])));
        by_seed.entry(seed_of(&joined)).or_default().push(joined);
    }
    for outputs in by_seed.values_mut() {
        outputs.sort();
    }
    by_seed
}

#[test]
fn fifty_seeds_on_four_partitions_join_as_the_reference_model() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("stj");
    let (clicks, users) = (format!("{app}-clicks"), format!("{app}-users"));
    let (inner, left) = (format!("{app}-inner"), format!("{app}-left"));
    for t in [
        &clicks,
        &users,
        &inner,
        &left,
        &format!("{app}-users-changelog"),
    ] {
        kafka.create_topic(t, PARTITIONS).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[errors]
rejected = "skip"
[state]
dir = "{state}"
[sources.clicks]
topic = "{clicks}"
[sources.users]
topic = "{users}"
table = true
[steps.inner]
join = "inner"
inputs = ["clicks", "users"]
[steps.left]
join = "left"
inputs = ["clicks", "users"]
[sinks.inner-out]
topic = "{inner}"
inputs = ["inner"]
[sinks.left-out]
topic = "{left}"
inputs = ["left"]
"#,
            state = dir.path().join("state").display()
        ),
    );
    let seeds: Vec<Vec<Vec<Event>>> = (0..SEEDS).map(|s| phased(&seeded(s))).collect();
    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    let record = |e: &Event| {
        let value = e.value.as_deref().map(|v| serde_json::to_vec(v).unwrap());
        (e.key.clone(), value, e.time)
    };
    for phase in 0..PHASES {
        // The table's records, committed, then the stream's: polled
        // together, either could come first.
        for side in [Side::Right, Side::Left] {
            let topic = if side == Side::Right { &users } else { &clicks };
            let batch: Vec<_> = (seeds.iter())
                .flat_map(|s| s.get(phase).into_iter().flatten())
                .filter(|e| e.side == side)
                .map(record)
                .collect();
            support::produce_nullable(&brokers, topic, &batch);
            let end = support::high_watermarks(&brokers, topic, PARTITIONS);
            wait_until("a phase committed", &mut [&mut run], || {
                (support::committed(&brokers, &app, topic, PARTITIONS).iter())
                    .zip(&end)
                    .all(|(c, e)| *e == 0 || c == e)
            });
        }
    }
    run.terminate();

    for (kind, topic) in [(Kind::Inner, &inner), (Kind::Left, &left)] {
        let got = results(&brokers, topic);
        for (seed, phases) in seeds.iter().enumerate() {
            let events: Vec<Event> = phases.concat();
            let mut want: Vec<Joined> =
                (joins::stream_table::join(&events, kind).outputs.into_iter())
                    .map(|o| (o.key, o.value.expect("no tombstones")))
                    .collect();
            want.sort();
            let got = got.get(&(seed as u64)).cloned().unwrap_or_default();
            let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
            let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
            assert_eq!(
                got, want,
                "seed {seed}, {kind:?} join: not expected {extra:?}; missing {missing:?}"
            );
        }
    }
}

/// What `sluice dev` printed for `topic` and an example's
/// `expected.jsonl`, each sorted (one key's records are in order; keys on
/// different partitions interleave).
fn printed_and_expected(
    stdout: &str,
    topic: &str,
    dir: &std::path::Path,
) -> (Vec<String>, Vec<String>) {
    let mut got: Vec<String> = (support::printed(stdout, topic).into_iter())
        .map(|(key, value)| serde_json::json!({"key": key, "value": value}).to_string())
        .collect();
    let mut want: Vec<String> = (std::fs::read_to_string(dir.join("expected.jsonl"))
        .unwrap()
        .lines())
    .map(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap()
            .to_string()
    })
    .collect();
    got.sort();
    want.sort();
    (got, want)
}

#[test]
fn the_click_enrichment_example_gives_its_expected_output() {
    let dir = support::repo().join("plugins/click-enrichment");
    let stdout = support::sluice_dev(&dir, "input.jsonl");
    let (got, want) = printed_and_expected(&stdout, "enriched-clicks", &dir);
    assert_eq!(got, want, "sluice dev printed:\n{stdout}");
}

#[test]
fn the_search_clicks_example_gives_its_expected_output() {
    let dir = support::repo().join("plugins/search-clicks");
    let out = std::process::Command::new(support::sluice_bin())
        .args([
            "dev",
            "pipeline.toml",
            "--input",
            "input.jsonl",
            "--idle-close",
        ])
        .current_dir(&dir)
        .env("RUST_LOG", "warn,librdkafka=off")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (got, want) = printed_and_expected(&stdout, "search-outcomes", &dir);
    assert_eq!(got, want, "sluice dev printed:\n{stdout}");
}

#[test]
fn a_join_waits_for_its_table_to_catch_up_before_its_stream_starts() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("wait");
    let (clicks, users, out) = (
        format!("{app}-clicks"),
        format!("{app}-users"),
        format!("{app}-out"),
    );
    for t in [&clicks, &users, &out, &format!("{app}-users-changelog")] {
        kafka.create_topic(t, 1).unwrap();
    }
    // A table of 3,000 users, and a click for each, all there before the
    // pipeline starts: small call batches take the table many rounds.
    let n = 3_000;
    let rows: Vec<_> = (0..n)
        .map(|i| {
            (
                Some(format!("u{i}")),
                format!(r#"{{"name":"n{i}"}}"#).into_bytes(),
                1,
            )
        })
        .collect();
    let taps: Vec<_> = (0..n)
        .rev()
        .map(|i| (Some(format!("u{i}")), br#"{"page":"/"}"#.to_vec(), 2))
        .collect();
    support::produce(&brokers, &users, &rows);
    support::produce(&brokers, &clicks, &taps);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
max.batch.records = 20
commit.interval.ms = 100
[state]
dir = "{state}"
[sources.clicks]
topic = "{clicks}"
[sources.users]
topic = "{users}"
table = true
[steps.joined]
join = "inner"
joiner = "merge"
inputs = ["clicks", "users"]
[sinks.out]
topic = "{out}"
inputs = ["joined"]
"#,
            state = dir.path().join("state").display()
        ),
    );
    let log = dir.path().join("run.log");
    support::run_to_end(
        &pipeline,
        &brokers,
        &app,
        &[(&clicks, 1), (&users, 1)],
        log.clone(),
    );
    let joined = support::read_all(&brokers, &out, 1).len();
    assert_eq!(joined, n, "every click met its user");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("wait-for-table: stream partitions held"),
        "{log}"
    );
}

/// A joined output with its time.
type Timed = (Option<String>, (Option<String>, Option<String>), i64);

/// The stream–stream results a join must give when no record comes later
/// than the grace allows, computed offline from the whole input: every
/// matched pair (at the later time), and for the sides whose unmatched
/// records are kept, each record with a value that matched nothing (or
/// has no key), at its own time.
fn offline(events: &[Event], kind: Kind, w: Windows) -> Vec<Timed> {
    let pairs = stream_stream::all_pairs(events, w);
    let mut out: Vec<_> = (pairs.iter())
        .map(|&(l, r)| {
            let (l, r) = (&events[l], &events[r]);
            (
                l.key.clone(),
                (l.value.clone(), r.value.clone()),
                l.time.max(r.time),
            )
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        let kept = match kind {
            Kind::Inner => false,
            Kind::Left => e.side == Side::Left,
            Kind::Outer => true,
        };
        let matched = pairs.iter().any(|&(l, r)| l == i || r == i);
        if kept && e.value.is_some() && !matched {
            let pair = match e.side {
                Side::Left => (e.value.clone(), None),
                Side::Right => (None, e.value.clone()),
            };
            out.push((e.key.clone(), pair, e.time));
        }
    }
    out.sort();
    out
}

#[test]
fn stream_stream_joins_of_fifty_seeds_on_four_partitions_give_every_pair_once() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("ssj");
    let (lefts, rights) = (format!("{app}-searches"), format!("{app}-clicks"));
    let kinds = [
        (Kind::Inner, "inner"),
        (Kind::Left, "left"),
        (Kind::Outer, "outer"),
    ];
    let mut topics = vec![lefts.clone(), rights.clone()];
    for (_, name) in kinds {
        topics.push(format!("{app}-{name}"));
        topics.push(format!("{app}-{name}-changelog"));
    }
    for t in &topics {
        kafka.create_topic(t, PARTITIONS).unwrap();
    }
    // Seeds take turns, each 100 s after the one before, committed before
    // the next is produced; within a seed the two topics' records arrive
    // in any order, and a grace longer than a seed's span keeps every
    // record in time (late records are the unit tests' business, against
    // the model in arrival order).
    let w = Windows {
        before: 30,
        after: 50,
        grace: 5_000,
        eager: false,
    };
    let steps: String = (kinds.iter())
        .map(|(_, name)| {
            format!(
                "[steps.{name}]\njoin = \"{name}\"\njoin-window = {{ before = {}, after = {}, grace = {} }}\ninputs = [\"searches\", \"clicks\"]\n[sinks.{name}-out]\ntopic = \"{app}-{name}\"\ninputs = [\"{name}\"]\n",
                w.before, w.after, w.grace
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            "application.id = \"{app}\"\n[processing]\ncommit.interval.ms = 100\n[state]\ndir = \"{}\"\n[sources.searches]\ntopic = \"{lefts}\"\n[sources.clicks]\ntopic = \"{rights}\"\n{steps}",
            dir.path().join("state").display()
        ),
    );
    let seeds: Vec<Vec<Event>> = (0..SEEDS)
        .map(|s| {
            let shift = s as i64 * 100_000;
            (seeded(s).into_iter())
                .map(|e| Event {
                    time: e.time + shift,
                    ..e
                })
                .collect()
        })
        .collect();
    let end = seeds.iter().flatten().map(|e| e.time).max().unwrap();
    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    let record = |e: &Event| {
        let value = e.value.as_deref().map(|v| serde_json::to_vec(v).unwrap());
        (e.key.clone(), value, e.time)
    };
    for events in &seeds {
        for (side, topic) in [(Side::Left, &lefts), (Side::Right, &rights)] {
            let batch: Vec<_> = events
                .iter()
                .filter(|e| e.side == side)
                .map(record)
                .collect();
            support::produce_nullable(&brokers, topic, &batch);
        }
        let ends = [&lefts, &rights].map(|t| support::high_watermarks(&brokers, t, PARTITIONS));
        wait_until("a seed committed", &mut [&mut run], || {
            [&lefts, &rights].iter().zip(&ends).all(|(t, end)| {
                (support::committed(&brokers, &app, t, PARTITIONS).iter())
                    .zip(end)
                    .all(|(c, e)| *e == 0 || c == e)
            })
        });
    }
    // Far-future records on every partition close every window left.
    let flush: Vec<_> = (0..40)
        .map(|i| {
            (
                Some(format!("flush-{i}")),
                Some(serde_json::to_vec("flush").unwrap()),
                end + 100_000,
            )
        })
        .collect();
    support::produce_nullable(&brokers, &lefts, &flush);
    let ends = support::high_watermarks(&brokers, &lefts, PARTITIONS);
    wait_until("the flush committed", &mut [&mut run], || {
        (support::committed(&brokers, &app, &lefts, PARTITIONS).iter())
            .zip(&ends)
            .all(|(c, e)| *e == 0 || c == e)
    });
    run.terminate();

    for (kind, name) in kinds {
        let mut got: BTreeMap<u64, Vec<_>> = BTreeMap::new();
        for r in support::read_all(&brokers, &format!("{app}-{name}"), PARTITIONS) {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            let side = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            let key = r.key.map(|k| String::from_utf8(k).unwrap());
            if key.as_deref().is_some_and(|k| k.starts_with("flush")) {
                continue;
            }
            let pair = (side(&v["left"]), side(&v["right"]));
            let any = pair.0.clone().or(pair.1.clone()).unwrap();
            let seed: u64 = any[1..any.find('-').unwrap()].parse().unwrap();
            got.entry(seed)
                .or_default()
                .push((key, pair, r.timestamp.unwrap()));
        }
        for (seed, events) in seeds.iter().enumerate() {
            let mut mine = got.remove(&(seed as u64)).unwrap_or_default();
            mine.sort();
            let want = offline(events, kind, w);
            let mut extra = mine.clone();
            for x in &want {
                match extra.iter().position(|g| g == x) {
                    Some(i) => {
                        extra.remove(i);
                    }
                    None => panic!("seed {seed}, {kind:?} join: {x:?} missing; got {mine:?}"),
                }
            }
            // Kafka Streams' rule 5: a record that arrives after its
            // window ended is emitted unmatched at once, and may still be
            // matched by a partner that arrives later within the grace.
            // Across two topics arrival order is the broker's, so such an
            // extra unmatched result may come; but only for a record
            // that did match.
            for (key, (l, r), time) in &extra {
                let matched = want.iter().any(|(k, (wl, wr), _)| {
                    k == key
                        && ((l.is_some() && r.is_none() && wl == l)
                            || (r.is_some() && l.is_none() && wr == r))
                });
                assert!(
                    kind != Kind::Inner && matched,
                    "seed {seed}, {kind:?} join: unexpected {:?}",
                    (key, (l, r), time)
                );
            }
        }
    }
}

#[test]
fn a_joined_topic_partitioned_otherwise_than_by_murmur2_is_refused_at_start() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("copart");
    let (clicks, users) = (format!("{app}-clicks"), format!("{app}-users"));
    for t in [
        &clicks,
        &users,
        &format!("{app}-out"),
        &format!("{app}-users-changelog"),
    ] {
        kafka.create_topic(t, 2).unwrap();
    }
    // Keyed records, but put on the partition a CRC32 partitioner (or a
    // schema id in the key) might have chosen: not murmur2's.
    let key = (0..)
        .map(|i| format!("u{i}"))
        .find(|k| partition_of(k.as_bytes(), 2) == 1)
        .unwrap();
    support::produce_on(
        &brokers,
        &users,
        Some(0),
        &[(Some(key.clone()), br#"{"name":"Ada"}"#.to_vec(), 1)],
    );
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    support::write_pipeline(
        dir.path(),
        &format!(
            "application.id = \"{app}\"\n[state]\ndir = \"{}\"\n[sources.clicks]\ntopic = \"{clicks}\"\n[sources.users]\ntopic = \"{users}\"\ntable = true\n[steps.enriched]\njoin = \"left\"\ninputs = [\"clicks\", \"users\"]\n[sinks.out]\ntopic = \"{app}-out\"\ninputs = [\"enriched\"]\n",
            dir.path().join("state").display()
        ),
    );
    let args = ["run", "pipeline.toml", "--brokers", brokers.as_str()];
    let ended = support::sluice_within(
        dir.path(),
        tmp.path(),
        &args,
        std::time::Duration::from_secs(60),
    );
    assert!(!ended.status.success());
    let e = &ended.stderr;
    assert!(
        e.contains(&format!("topic `{users}` is joined by key, but its record at partition 0 offset 0 (key `{key}`) belongs on partition 1"))
            && e.contains("murmur2"),
        "{e}"
    );
}

#[test]
fn a_joiner_plugin_that_traps_fails_only_its_record_to_the_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let joiner = support::repo().join("tests/plugins/join-trap-on-marker");
    support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "trapjoin"
[errors]
trap = "dlq"
[sources.clicks]
[sources.users]
table = true
[steps.joined]
join = "left"
joiner = "{}"
inputs = ["clicks", "users"]
[sinks.out]
inputs = ["joined"]
"#,
            joiner.display()
        ),
    );
    let lines = [
        r#"{"topic": "users", "key": "u1", "value": "ada", "timestamp": 1}"#,
        r#"{"topic": "users", "key": "u2", "value": "TRAP-row", "timestamp": 1}"#,
        r#"{"topic": "clicks", "key": "u1", "value": "home", "timestamp": 2}"#,
        r#"{"topic": "clicks", "key": "u2", "value": "cart", "timestamp": 3}"#,
        r#"{"topic": "clicks", "key": "u3", "value": "shoes", "timestamp": 4}"#,
    ];
    std::fs::write(dir.path().join("input.jsonl"), lines.join("\n")).unwrap();
    let stdout = support::sluice_dev(dir.path(), "input.jsonl");
    let out: Vec<&str> = stdout.lines().filter(|l| l.starts_with("out[")).collect();
    assert_eq!(out.len(), 2, "{stdout}");
    assert!(
        out.iter()
            .any(|l| l.contains("key=u1") && l.contains("home|ada")),
        "{stdout}"
    );
    assert!(
        out.iter()
            .any(|l| l.contains("key=u3") && l.contains("shoes|-")),
        "{stdout}"
    );
    let dead: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("trapjoin-dlq["))
        .collect();
    assert_eq!(dead.len(), 1, "{stdout}");
    assert!(
        dead[0].contains("key=u2")
            && dead[0].contains("cart")
            && dead[0].contains("sluice.error.kind=trap"),
        "{stdout}"
    );
}

/// A global table on 3 partitions joined with a stream on 4, by a field of
/// the stream's values: no co-partitioning. Every order meets its user
/// (the table is restored whole before the first order is processed, on
/// every partition), and an update of the table while the pipeline runs
/// is seen by the orders after it. The table's own partitions and the
/// stream's need not agree: a table–stream join of them would be refused.
#[test]
fn a_global_table_is_restored_whole_before_the_stream_and_followed_after() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("global");
    let (orders, users, out) = (
        format!("{app}-orders"),
        format!("{app}-users"),
        format!("{app}-out"),
    );
    kafka.create_topic(&orders, 4).unwrap();
    kafka.create_topic(&users, 3).unwrap();
    kafka.create_topic(&out, 1).unwrap();
    let n = 400;
    let rows: Vec<_> = (0..n)
        .map(|i| (Some(format!("u{i}")), format!(r#""n{i}""#).into_bytes(), 1))
        .collect();
    support::produce(&brokers, &users, &rows);
    // Orders keyed by order id, naming their user in the value.
    let order = |i: usize, user: usize| {
        (
            Some(format!("o{i}")),
            format!(r#"{{"id":"o{i}","user":{{"id":"u{user}"}}}}"#).into_bytes(),
            2,
        )
    };
    let first: Vec<_> = (0..n).map(|i| order(i, n - 1 - i)).collect();
    support::produce(&brokers, &orders, &first);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[sources.orders]
topic = "{orders}"
[sources.users]
topic = "{users}"
table = true
global = true
[steps.enriched]
join = "inner"
joiner = "pair"
key-field = "user.id"
inputs = ["orders", "users"]
[sinks.out]
topic = "{out}"
inputs = ["enriched"]
"#
        ),
    );
    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    let outputs = |min: usize| {
        let got = support::read_all(&brokers, &out, 1);
        (got.len() >= min).then_some(got)
    };
    wait_until("every order joined", &mut [&mut run], || {
        outputs(n).is_some()
    });
    // Renamed users, then orders of theirs: the new names must show.
    let renamed: Vec<_> = (0..10)
        .map(|i| {
            (
                Some(format!("u{i}")),
                format!(r#""renamed{i}""#).into_bytes(),
                3,
            )
        })
        .collect();
    support::produce(&brokers, &users, &renamed);
    // Orders of renamed users, produced until one shows the new name:
    // the table's reader and the stream are not ordered with each other.
    let mut seen_renamed = false;
    for next in n..n + 100 {
        support::produce(&brokers, &orders, &[order(next, next % 10)]);
        let mut got = None;
        wait_until("the order joined", &mut [&mut run], || {
            got = outputs(next + 1);
            got.is_some()
        });
        let last = got.unwrap().pop().unwrap();
        let v: serde_json::Value = serde_json::from_slice(last.value.as_ref().unwrap()).unwrap();
        if v["right"]
            .as_str()
            .is_some_and(|r| r.starts_with("renamed"))
        {
            seen_renamed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = run.terminate();
    assert!(
        seen_renamed,
        "an update of the global table is followed; log:\n{log}"
    );
    let got = support::read_all(&brokers, &out, 1);
    let mut first_n: Vec<(String, String)> = (got.iter())
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref()?).unwrap();
            let id = v["left"]["id"].as_str()?.to_owned();
            let i: usize = id[1..].parse().ok()?;
            (i < n).then(|| (id, v["right"].as_str().unwrap().to_owned()))
        })
        .collect();
    first_n.sort();
    let mut want: Vec<(String, String)> = (0..n)
        .map(|i| (format!("o{i}"), format!("n{}", n - 1 - i)))
        .collect();
    want.sort();
    assert_eq!(first_n, want, "each of the first orders met its user, once");
    assert!(
        log.contains("global table restored table=users rows=400 skipped=0"),
        "{log}"
    );
    let (restored, running) = (log.find("global table restored"), log.find(" running "));
    assert!(restored < running, "restored before running: {log}");
    assert!(
        !log.contains("PartitionEOF"),
        "end of partition is no error: {log}"
    );
}

/// Stream–table with a versioned table and a grace period, on 2
/// partitions: the clicks are read first and wait; the users' rows, with
/// times before and among the clicks, come after them; then one click per
/// partition far ahead lets the waiting clicks go. Each click must meet its
/// user's row as of the click's time (the reference model's answer for
/// the clicks given after the rows): without the grace period an inner
/// join of clicks read before their table emits nothing at all.
#[test]
fn a_versioned_table_with_grace_joins_clicks_read_before_their_users() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("graced");
    let (clicks, users, out) = (
        format!("{app}-clicks"),
        format!("{app}-users"),
        format!("{app}-out"),
    );
    for t in [
        &clicks,
        &users,
        &out,
        &format!("{app}-users-changelog"),
        &format!("{app}-joined-changelog"),
    ] {
        kafka.create_topic(t, 2).unwrap();
    }
    // 200 clicks over 20 users within 4 s; each user's row changes three
    // times, at times before and among the clicks.
    let mut rng = support::Rng::new(7);
    let click_events: Vec<Event> = (0..200)
        .map(|i| {
            let user = format!("u{}", rng.below(20));
            let v = format!("c{i}");
            Event::new(
                Side::Left,
                &user,
                Some(&v),
                10_000 + rng.below(4_000) as i64,
            )
        })
        .collect();
    let row_events: Vec<Event> = (0..20)
        .flat_map(|u| {
            [0, 1, 2].map(|n| {
                let v = format!("u{u}-v{n}");
                Event::new(Side::Right, &format!("u{u}"), Some(&v), 9_000 + n * 2_000)
            })
        })
        .collect();
    let produce = |topic: &str, events: &[Event]| {
        let records: Vec<_> = (events.iter())
            .map(|e| {
                let v = serde_json::to_vec(e.value.as_deref().unwrap()).unwrap();
                (e.key.clone(), v, e.time)
            })
            .collect();
        support::produce(&brokers, topic, &records);
    };
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[state]
dir = "{state}"
[sources.clicks]
topic = "{clicks}"
[sources.users]
topic = "{users}"
table = true
history = "1h"
[steps.joined]
join = "inner"
join-grace = "10s"
inputs = ["clicks", "users"]
[sinks.out]
topic = "{out}"
inputs = ["joined"]
"#,
            state = dir.path().join("state").display()
        ),
    );
    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    produce(&clicks, &click_events);
    let read_up_to = |topic: &str| {
        let ends = support::high_watermarks(&brokers, topic, 2);
        support::committed(&brokers, &app, topic, 2) == ends
    };
    wait_until("the clicks are read", &mut [&mut run], || {
        read_up_to(&clicks)
    });
    assert!(
        support::read_all(&brokers, &out, 2).is_empty(),
        "the clicks wait for the grace period"
    );
    produce(&users, &row_events);
    wait_until("the rows are read", &mut [&mut run], || read_up_to(&users));
    // A click far ahead on each partition moves its stream time on.
    let mut ahead = Vec::new();
    for p in 0..2 {
        let key = (0..)
            .map(|i| format!("ahead{i}"))
            .find(|k| partition_of(k.as_bytes(), 2) == p)
            .unwrap();
        ahead.push(Event::new(Side::Left, &key, Some("ahead"), 100_000));
    }
    produce(&clicks, &ahead);
    let model = joins::stream_table::versioned(
        &[&row_events[..], &click_events[..], &ahead[..]].concat(),
        Kind::Inner,
        3_600_000,
        None,
    );
    let want: BTreeMap<String, (String, i64)> = (model.outputs.iter())
        .map(|o| {
            let (left, right) = o.value.clone().unwrap();
            (left.unwrap(), (right.unwrap(), o.time))
        })
        .collect();
    assert_eq!(want.len(), 200, "every click has a row as of its time");
    wait_until("every click is joined", &mut [&mut run], || {
        support::read_all(&brokers, &out, 2).len() >= want.len()
    });
    run.terminate();
    let got: BTreeMap<String, (String, i64)> = (support::read_all(&brokers, &out, 2).into_iter())
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
            (text(&v["left"]), (text(&v["right"]), r.timestamp.unwrap()))
        })
        .collect();
    assert_eq!(got, want);
}

/// A foreign-key join of orders (4 partitions) with customers (3: not
/// co-partitioned) on the embedded broker, each order naming its customer
/// in `customer.id`, fed in phases: the first rows; customers renamed and
/// orders moved to other customers; orders deleted and a customer deleted.
struct ForeignKeyCase {
    _kafka: EmbeddedKafka,
    brokers: String,
    orders: String,
    customers: String,
    out: String,
    pipeline: std::path::PathBuf,
    dir: tempfile::TempDir,
    /// The tables as the phases so far leave them: order -> customer
    /// number, customer -> name.
    final_orders: BTreeMap<String, usize>,
    final_customers: BTreeMap<String, String>,
}

/// (key, value or tombstone, time).
type Row = (Option<String>, Option<Vec<u8>>, i64);

impl ForeignKeyCase {
    const ORDERS: usize = 200;
    const CUSTOMERS: usize = 30;

    fn new() -> ForeignKeyCase {
        let kafka = EmbeddedKafka::start(1).unwrap();
        let brokers = kafka.bootstrap_servers();
        let app = support::unique("fk");
        let (orders, customers, out) = (
            format!("{app}-orders"),
            format!("{app}-customers"),
            format!("{app}-out"),
        );
        kafka.create_topic(&orders, 4).unwrap();
        kafka.create_topic(&customers, 3).unwrap();
        kafka.create_topic(&out, 1).unwrap();
        // The embedded broker cannot create topics for Sluice: the internal
        // topics and changelogs, each with its sub-topology's count.
        for (topic, n) in [
            ("enriched-subscription", 3),
            ("enriched-response", 4),
            ("orders-changelog", 4),
            ("customers-changelog", 3),
            ("enriched-changelog", 4),
            ("enriched-subscribe-changelog", 4),
            ("enriched-answer-changelog", 3),
        ] {
            kafka.create_topic(&format!("{app}-{topic}"), n).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let pipeline = support::write_pipeline(
            dir.path(),
            &format!(
                r#"
application.id = "{app}"
[processing]
commit.interval.ms = 50
[sources.orders]
topic = "{orders}"
table = true
[sources.customers]
topic = "{customers}"
table = true
[steps.enriched]
join = "left"
joiner = "pair"
foreign-key = "customer.id"
inputs = ["orders", "customers"]
[sinks.out]
topic = "{out}"
inputs = ["enriched"]
[kafka]
# A killed run's member leaves the group soon.
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#
            ),
        );
        ForeignKeyCase {
            _kafka: kafka,
            brokers,
            orders,
            customers,
            out,
            pipeline,
            dir,
            final_orders: BTreeMap::new(),
            final_customers: BTreeMap::new(),
        }
    }

    fn order(&mut self, i: usize, c: Option<usize>) -> Row {
        let key = format!("o{i}");
        let value = c.map(|c| {
            self.final_orders.insert(key.clone(), c);
            format!(r#"{{"id":"o{i}","customer":{{"id":"c{c}"}}}}"#).into_bytes()
        });
        if c.is_none() {
            self.final_orders.remove(&key);
        }
        (Some(key), value, 2)
    }

    fn customer(&mut self, c: usize, name: Option<&str>) -> Row {
        let key = format!("c{c}");
        match name {
            Some(n) => self.final_customers.insert(key.clone(), n.to_owned()),
            None => self.final_customers.remove(&key),
        };
        (Some(key), name.map(|n| format!("\"{n}\"").into_bytes()), 1)
    }

    /// Produces phase `n` (0, 1 or 2).
    fn phase(&mut self, n: usize) {
        let (orders, customers): (Vec<Row>, Vec<Row>) = match n {
            // Order i names customer i % 35: some name none.
            0 => (
                (0..Self::ORDERS)
                    .map(|i| self.order(i, Some(i % (Self::CUSTOMERS + 5))))
                    .collect(),
                (0..Self::CUSTOMERS)
                    .map(|c| self.customer(c, Some(&format!("n{c}"))))
                    .collect(),
            ),
            1 => (
                (0..50)
                    .map(|i| self.order(i, Some((i + 7) % Self::CUSTOMERS)))
                    .collect(),
                (0..10)
                    .map(|c| self.customer(c, Some(&format!("renamed{c}"))))
                    .collect(),
            ),
            _ => (
                (150..Self::ORDERS).map(|i| self.order(i, None)).collect(),
                vec![self.customer(12, None)],
            ),
        };
        support::produce_nullable(&self.brokers, &self.customers, &customers);
        support::produce_nullable(&self.brokers, &self.orders, &orders);
    }

    /// The left join of the final tables: order -> (order id, customer
    /// name or none).
    fn expected(&self) -> BTreeMap<String, (String, Option<String>)> {
        (self.final_orders.iter())
            .map(|(o, c)| {
                let name = self.final_customers.get(&format!("c{c}")).cloned();
                (o.clone(), (o.clone(), name))
            })
            .collect()
    }

    /// The output replayed, key by key.
    fn replayed(&self) -> BTreeMap<String, (String, Option<String>)> {
        let mut table = BTreeMap::new();
        for r in support::read_all(&self.brokers, &self.out, 1) {
            let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
            match &r.value {
                None => table.remove(&key),
                Some(v) => {
                    let v: serde_json::Value = serde_json::from_slice(v).unwrap();
                    let left = v["left"]["id"].as_str().unwrap().to_owned();
                    table.insert(key, (left, v["right"].as_str().map(str::to_owned)))
                }
            };
        }
        table
    }

    /// Runs until the output replays to the join of the final tables.
    fn run_until_joined(&self, log: &str) -> String {
        let log = self.dir.path().join(log);
        let mut run = SluiceRun::start(&self.pipeline, &self.brokers, log);
        let want = self.expected();
        wait_until(
            "the result to be the join of the tables",
            &mut [&mut run],
            || self.replayed() == want,
        );
        run.terminate()
    }

    /// No result ever paired an order with a customer it did not name.
    fn check_every_pair(&self, log: &str) {
        for r in support::read_all(&self.brokers, &self.out, 1) {
            let Some(v) = &r.value else { continue };
            let v: serde_json::Value = serde_json::from_slice(v).unwrap();
            let named = v["left"]["customer"]["id"].as_str().unwrap();
            if let Some(name) = v["right"].as_str() {
                let c = name.trim_start_matches("renamed").trim_start_matches('n');
                assert_eq!(format!("c{c}"), named, "{v}; log:\n{log}");
            }
        }
    }
}

/// The foreign-key join case, one phase at a time: after each, the result
/// table (the output replayed) must be the left join of the tables.
#[test]
fn a_foreign_key_join_of_tables_on_other_partition_counts_ends_at_the_join_of_the_final_tables() {
    let mut case = ForeignKeyCase::new();
    let mut logs = String::new();
    for phase in 0..3 {
        case.phase(phase);
        logs += &case.run_until_joined(&format!("run{phase}.log"));
    }
    case.check_every_pair(&logs);
}

/// The foreign-key join case with a run killed at each point of the
/// commit protocol, in each of the two sub-topologies' commits (at-least-
/// once): the result replayed still ends at the join of the final tables.
/// (Commits every 50 ms, and the messages' round trips, spread a phase over
/// several commits, so each run reaches its second that writes a store.)
#[test]
fn a_foreign_key_join_killed_at_each_commit_point_still_ends_at_the_join_of_the_final_tables() {
    let mut case = ForeignKeyCase::new();
    for (phase, point) in ["changelog-sent:2", "changelog-acked:2", "state-written:2"]
        .iter()
        .enumerate()
    {
        case.phase(phase);
        let log = case.dir.path().join(format!("crash{phase}.log"));
        support::crash_at(&case.pipeline, &case.brokers, log, point);
    }
    let log = case.run_until_joined("end.log");
    case.check_every_pair(&log);
}

/// A join with a global table by a key a plugin computes
/// (`key-plugin`, `tests/plugins/key-by-field`): each order, keyed by
/// order id on 4 partitions, meets the user its value names, from a table
/// on 3; an order whose value the plugin cannot read is dead-lettered with
/// the plugin's digest, and the others are not held up by it.
#[test]
fn a_global_table_is_looked_up_by_the_key_a_plugin_computes() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("keyplugin");
    let (orders, users, out, dlq) = (
        format!("{app}-orders"),
        format!("{app}-users"),
        format!("{app}-out"),
        format!("{app}-dlq"),
    );
    kafka.create_topic(&orders, 4).unwrap();
    kafka.create_topic(&users, 3).unwrap();
    kafka.create_topic(&out, 1).unwrap();
    kafka.create_topic(&dlq, 1).unwrap();
    let n = 50;
    let rows: Vec<_> = (0..n)
        .map(|i| (Some(format!("u{i}")), format!(r#""n{i}""#).into_bytes(), 1))
        .collect();
    support::produce(&brokers, &users, &rows);
    let mut input: Vec<_> = (0..n)
        .map(|i| {
            let value = format!(r#"{{"id":"o{i}","user":"u{}"}}"#, (i * 7) % n);
            (Some(format!("o{i}")), value.into_bytes(), 2)
        })
        .collect();
    input.insert(10, (Some("bad".to_owned()), b"not json".to_vec(), 2));
    support::produce(&brokers, &orders, &input);
    let plugin = support::component("tests/plugins/key-by-field");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[errors]
rejected = "dlq"
[sources.orders]
topic = "{orders}"
[sources.users]
topic = "{users}"
table = true
global = true
[steps.enriched]
join = "inner"
joiner = "pair"
key-plugin = "{}"
config.field = "user"
inputs = ["orders", "users"]
[sinks.out]
topic = "{out}"
inputs = ["enriched"]
"#,
            plugin.display()
        ),
    );
    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    wait_until("every order joined", &mut [&mut run], || {
        support::read_all(&brokers, &out, 1).len() >= n
            && !support::read_all(&brokers, &dlq, 1).is_empty()
    });
    let log = run.terminate();
    let mut got: Vec<(String, String)> = (support::read_all(&brokers, &out, 1).iter())
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
            (key, v["right"].as_str().unwrap().to_owned())
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = (0..n)
        .map(|i| (format!("o{i}"), format!("n{}", (i * 7) % n)))
        .collect();
    want.sort();
    assert_eq!(got, want, "each order met its user once; log:\n{log}");
    let dead = support::read_all(&brokers, &dlq, 1);
    assert_eq!(dead.len(), 1, "{log}");
    let header = |name: &str| {
        let (_, v) = dead[0].headers.iter().find(|(k, _)| k == name).unwrap();
        String::from_utf8(v.clone()).unwrap()
    };
    assert_eq!(dead[0].key.as_deref(), Some(&b"bad"[..]));
    assert_eq!(header("sluice.step"), "enriched");
    assert_ne!(header("sluice.plugin.digest"), "built-in");
}
