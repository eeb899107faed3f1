//! The foreign-key join end to end on the task driver, which plays the
//! subscription and response topics: the guide's table row by row, and
//! random inputs against the reference model.

use sluice_reference::joins::tables::{FOREIGN_KEY, Out};
use sluice_reference::joins::{self, Event, Kind, Pair, Side};

use crate::operator::join::testing::name;
use crate::task::testing::Driver;

fn pipeline(kind: Kind) -> String {
    format!(
        r#"
        application.id = "app"
        [sources.orders]
        table = true
        [sources.customers]
        table = true
        [steps.joined]
        join = "{}"
        joiner = "pair"
        foreign-key = "customer.id"
        inputs = ["orders", "customers"]
        [sinks.out]
        inputs = ["joined"]
        "#,
        name(kind)
    )
}

/// A left value as the join reads it: the model's value `v`, naming the
/// right key `fk` (or none) at `customer.id`.
fn left_value(v: &str, fk: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"v": v, "customer": {"id": fk}})).unwrap()
}

/// Pushes `e`: a left value names the key `fk(value)`.
fn push(d: &mut Driver, e: &Event, fk: &dyn Fn(&str) -> Option<String>) {
    let (topic, value) = match e.side {
        Side::Left => (
            "orders",
            (e.value.as_deref()).map(|v| left_value(v, fk(v).as_deref())),
        ),
        Side::Right => (
            "customers",
            e.value.as_deref().map(|v| serde_json::to_vec(v).unwrap()),
        ),
    };
    let key = e.key.as_deref().map(str::as_bytes);
    d.push(topic, key, value.as_deref(), Some(e.time));
}

/// What reached `out` from the `from`-th record on: (key, pair, time),
/// the left side read back as the model's value.
fn seen(d: &Driver, from: usize) -> Vec<(Option<String>, Option<Pair>, i64)> {
    (d.outputs("out")[from..].iter())
        .map(|r| {
            let pair = r.value.as_ref().map(|v| {
                let v: serde_json::Value = serde_json::from_slice(v).unwrap();
                let left = v["left"]["v"].as_str().map(str::to_owned);
                (left, v["right"].as_str().map(str::to_owned))
            });
            let key = r
                .key
                .as_ref()
                .map(|k| String::from_utf8(k.to_vec()).unwrap());
            (key, pair, r.timestamp.unwrap())
        })
        .collect()
}

#[test]
fn the_developer_guides_foreign_key_semantics_hold_row_by_row() {
    let own = |v: &str| Some(v.to_owned());
    for kind in [Kind::Inner, Kind::Left] {
        let mut d = Driver::from_toml(&pipeline(kind)).unwrap();
        for row in FOREIGN_KEY {
            let sent = d.outputs("out").len();
            // Row 1's right record first, as the model reads it.
            for (side, cell) in [(Side::Right, row.right), (Side::Left, row.left)] {
                if let Some((k, v)) = cell {
                    push(&mut d, &Event::new(side, k, v, row.offset), &own);
                    d.process().unwrap();
                }
            }
            let want: Vec<(Option<String>, Option<Pair>)> = (match kind {
                Kind::Inner => row.inner,
                _ => row.left_join,
            })
            .iter()
            .map(|(k, out)| {
                let pair = match *out {
                    Out::Pair(l, r) => Some((l.map(str::to_owned), r.map(str::to_owned))),
                    Out::Tombstone => None,
                };
                (Some(k.to_string()), pair)
            })
            .collect();
            let got: Vec<_> = seen(&d, sent).into_iter().map(|(k, p, _)| (k, p)).collect();
            assert_eq!(got, want, "{kind:?} join, offset {}", row.offset);
        }
    }
}

/// Left values `L17` name right keys `k0`..`k2`, one in five none.
fn fk(v: &str) -> Option<String> {
    let n = v[1..].parse::<u64>().unwrap();
    (n % 5 != 0).then(|| format!("k{}", n % 3))
}

#[test]
fn fifty_random_inputs_join_as_the_reference_model_does() {
    for seed in 0..50 {
        let events = joins::events(seed, 120, 40);
        for kind in [Kind::Inner, Kind::Left] {
            // One record at a time: each answered before the next comes,
            // exactly the model's results in its order.
            let mut d = Driver::from_toml(&pipeline(kind)).unwrap();
            for e in &events {
                push(&mut d, e, &fk);
                d.process().unwrap();
            }
            let want: Vec<_> = (joins::foreign_key::join_as_guide(&events, kind, fk).into_iter())
                .map(|o| (o.key, o.value, o.time))
                .collect();
            assert_eq!(seen(&d, 0), want, "seed {seed}, {kind:?}");
            // Nine at a time: answers come after later updates, and the
            // stale ones are dropped; the result ends the same.
            let mut d = Driver::from_toml(&pipeline(kind)).unwrap();
            for chunk in events.chunks(9) {
                chunk.iter().for_each(|e| push(&mut d, e, &fk));
                d.process().unwrap();
            }
            let mut table = std::collections::BTreeMap::new();
            for (key, pair, _) in seen(&d, 0) {
                match pair {
                    Some(p) => table.insert(key.unwrap(), p),
                    None => table.remove(&key.unwrap()),
                };
            }
            assert_eq!(
                table,
                joins::foreign_key::final_result(&events, kind, fk),
                "seed {seed}, {kind:?}, 9 per batch"
            );
        }
    }
}

#[test]
fn an_answer_for_a_replaced_left_value_is_dropped() {
    let mut d = Driver::from_toml(&pipeline(Kind::Inner)).unwrap();
    let right = |d: &mut Driver, k: &str, v: &str| {
        d.push(
            "customers",
            Some(k.as_bytes()),
            Some(&serde_json::to_vec(v).unwrap()),
            Some(1),
        )
    };
    right(&mut d, "c1", "Ada");
    right(&mut d, "c2", "Bo");
    d.process().unwrap();
    // Both updates of `o` subscribe before either is answered: the
    // answer for `A` comes when `o` is `B` already.
    d.push(
        "orders",
        Some(b"o"),
        Some(&left_value("A", Some("c1"))),
        Some(2),
    );
    d.push(
        "orders",
        Some(b"o"),
        Some(&left_value("B", Some("c2"))),
        Some(3),
    );
    d.process().unwrap();
    let pair = |l: &str, r: &str| Some((Some(l.to_owned()), Some(r.to_owned())));
    assert_eq!(seen(&d, 0), [(Some("o".to_owned()), pair("B", "Bo"), 3)]);
    // A right update reaches the current subscriber only.
    right(&mut d, "c1", "Ada L.");
    right(&mut d, "c2", "Bo B.");
    d.process().unwrap();
    assert_eq!(seen(&d, 1), [(Some("o".to_owned()), pair("B", "Bo B."), 1)]);
}

#[test]
fn a_left_value_without_the_foreign_key_field_is_rejected_and_nothing_else_is_lost() {
    let text = pipeline(Kind::Left).replace(
        "application.id = \"app\"",
        "application.id = \"app\"\n        [errors]\n        rejected = \"dlq\"",
    );
    let mut d = Driver::from_toml(&text).unwrap();
    d.push("customers", Some(b"c1"), Some(b"\"Ada\""), Some(1));
    d.push(
        "orders",
        Some(b"o1"),
        Some(&left_value("A", Some("c1"))),
        Some(2),
    );
    d.push("orders", Some(b"o2"), Some(br#"{"v":"B"}"#), Some(3));
    d.push("orders", Some(b"o1"), Some(b"not json"), Some(4));
    d.push(
        "orders",
        Some(b"o3"),
        Some(&left_value("C", Some("c1"))),
        Some(5),
    );
    d.process().unwrap();
    let pair = |l: &str| Some((Some(l.to_owned()), Some("Ada".to_owned())));
    let got: Vec<_> = seen(&d, 0)
        .into_iter()
        .map(|(k, p, _)| (k.unwrap(), p))
        .collect();
    assert_eq!(
        got,
        [("o1".to_owned(), pair("A")), ("o3".to_owned(), pair("C"))]
    );
    let dead = d.dead_letters();
    assert_eq!(dead.len(), 2);
    let headers: Vec<String> = (dead.iter())
        .map(|r| {
            let h = |n: &str| {
                let v = r.headers.iter().find(|(k, _)| k == n).unwrap().1.clone();
                String::from_utf8(v.unwrap().to_vec()).unwrap()
            };
            format!("{} {}", h("sluice.error.code"), h("sluice.error"))
        })
        .collect();
    assert!(
        headers[0].starts_with(
            "no-join-key the value has no field `customer.id` (the join's `foreign-key`)"
        ),
        "{headers:?}"
    );
    assert!(headers[1].contains("not JSON"), "{headers:?}");
    // The rejected update did not replace `o1`'s row: a right update
    // still reaches it.
    d.push("customers", Some(b"c1"), Some(b"\"Ada L.\""), Some(6));
    d.process().unwrap();
    let keys: Vec<_> = seen(&d, 2)
        .into_iter()
        .map(|(k, _, _)| k.unwrap())
        .collect();
    assert_eq!(keys, ["o1", "o3"]);
}

#[test]
fn a_pair_the_joiner_rejects_is_dead_lettered_as_its_left_row() {
    let text = pipeline(Kind::Left)
        .replace("joiner = \"pair\"", "joiner = \"merge\"")
        .replace(
            "application.id = \"app\"",
            "application.id = \"app\"\n        [errors]\n        rejected = \"dlq\"",
        );
    let mut d = Driver::from_toml(&text).unwrap();
    // `merge` reads JSON objects: a right row that is not one is refused.
    d.push("customers", Some(b"c1"), Some(b"Ada"), Some(1));
    d.push("customers", Some(b"c2"), Some(br#"{"name":"Bo"}"#), Some(1));
    let (o1, o2) = (left_value("A", Some("c1")), left_value("B", Some("c2")));
    d.push("orders", Some(b"o1"), Some(&o1), Some(2));
    d.push("orders", Some(b"o2"), Some(&o2), Some(2));
    d.process().unwrap();
    let dead = d.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].key.as_deref(), dead[0].value.as_deref()),
        (Some(&b"o1"[..]), Some(&o1[..])),
        "the order, not the answer that brought its customer"
    );
    let out = d.outputs("out");
    assert_eq!(out.len(), 1);
    let v: serde_json::Value = serde_json::from_slice(out[0].value.as_ref().unwrap()).unwrap();
    assert_eq!(
        (v["v"].as_str(), v["name"].as_str()),
        (Some("B"), Some("Bo"))
    );
}

#[test]
fn its_messages_carry_no_origin_since_their_tasks_read_two_topics() {
    // Which answers a right row gives depends on the order its task read
    // the subscriptions and the rows in: an origin index would not name
    // the same answer when read again, so none is given (a message
    // written twice is read twice), and the messages still count as
    // read back from repartition topics.
    let setup = Driver::setup(&pipeline(Kind::Left)).unwrap();
    let t = setup.topology();
    assert!((0..t.subtopologies.len()).all(|n| !t.writes_origins(n)));
    let mut d = setup.start().unwrap();
    d.push("customers", Some(b"c1"), Some(b"\"Ada\""), Some(1));
    d.push(
        "orders",
        Some(b"o1"),
        Some(&left_value("A", Some("c1"))),
        Some(2),
    );
    let counts = d.process().unwrap();
    for topic in ["app-joined-subscription", "app-joined-response"] {
        let sent = d.outputs(topic);
        assert_eq!(sent.len(), 1, "{topic}");
        assert!(
            !sent[0]
                .headers
                .iter()
                .any(|(n, _)| n == crate::record::ORIGIN_HEADER),
            "{topic}: {:?}",
            sent[0].headers
        );
    }
    assert_eq!((counts.records_in, counts.repartitioned), (2, 2));
}

#[test]
fn a_right_row_answers_more_subscribers_than_an_origin_could_index() {
    // Answers carry no origin, so one right update may answer more left
    // rows than an origin's index could tell apart (65,536).
    let n = crate::record::OUTPUTS_PER_ORIGIN as usize + 1;
    let mut d = Driver::from_toml(&pipeline(Kind::Inner)).unwrap();
    d.push("customers", Some(b"c1"), Some(b"\"Ada\""), Some(1));
    for i in 0..n {
        let key = format!("o{i}");
        d.push(
            "orders",
            Some(key.as_bytes()),
            Some(&left_value("A", Some("c1"))),
            Some(2),
        );
    }
    d.process().unwrap();
    assert_eq!(d.outputs("out").len(), n);
    d.push("customers", Some(b"c1"), Some(b"\"Ada L.\""), Some(3));
    d.process().unwrap();
    let renamed = seen(&d, n);
    assert_eq!(renamed.len(), n);
    assert!(
        renamed
            .iter()
            .all(|(_, p, _)| p.as_ref().unwrap().1.as_deref() == Some("Ada L."))
    );
}
