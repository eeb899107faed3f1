//! KTable–KTable foreign-key joins: inner and left (Kafka Streams has no
//! outer foreign-key join).
//!
//! The left table's value names a key of the right table (its foreign
//! key, given by an extractor). Kafka runs the join as a protocol between
//! the two tables' tasks; the model runs it the way the guide's table and
//! Kafka's `TopologyTestDriver` tests see it: each message handled as soon
//! as it is sent, in the order sent. Follows, in
//! `streams/src/main/java/org/apache/kafka/streams/kstream/internals/foreignkeyjoin/`
//! of apache/kafka `1eb7644` (4.0.0-SNAPSHOT):
//!
//! - `SubscriptionSendProcessorSupplier.java`: on each left update (new
//!   value `n`, previous value `o`, both known: the left table sends old
//!   values), which instructions go to which foreign key;
//! - `SubscriptionReceiveProcessorSupplier.java`: the right side keeps a
//!   subscription per (foreign key, left key), holding a hash of the left
//!   value it was made for; deletes remove it;
//! - `SubscriptionJoinProcessorSupplier.java`: answers an instruction with
//!   the right value, per instruction;
//! - `ForeignTableJoinProcessorSupplier.java`: a right update answers every
//!   subscription to its key, in left-key order;
//! - `ResponseJoinProcessorSupplier.java`: an answer whose hash is not the
//!   current left value's is stale and dropped; otherwise it gives a
//!   tombstone (no right value, and an inner join or no left value) or
//!   the pair (current left value, right value).
//!
//! The instructions, per left update of key `k` (`fk(v)` the extractor):
//!
//! - left join, `o` present: if `fk(o)` is not null and differs from
//!   `fk(n)` (null when `n` is), *delete and answer* to `fk(o)`; then
//!   *answer, null if no right value* to `fk(n)` (even a null `fk(n)`).
//! - left join, `o` absent, `n` present: *answer, null if none* to `fk(n)`.
//! - inner join, `o` present: nothing if `fk(o)` is null; if `n` is
//!   present: nothing if `fk(n)` is null, else (if the key changed)
//!   *delete, no answer* to `fk(o)` and *answer, null if none* to
//!   `fk(n)`; if `n` is absent: *delete and answer* to `fk(o)`.
//! - inner join, `o` absent, `n` present: *answer only if a right value*
//!   to `fk(n)`, unless it is null.
//!
//! Every answer carries the new left value's hash (the model compares the
//! values themselves), and a time: the later of the left update's and the
//! right value's for an answer to an instruction, the right update's for
//! an answer to a right update.
//!
//! Known defects of that code, reproduced by the model (the guide's table
//! shows one result where the left join gives two): KAFKA-16394 (a left
//! join gives a `(n, null)` result before the real one when the foreign
//! key changes, and two tombstones when a left value with a foreign key
//! is deleted), KAFKA-16407 and KAFKA-16434 (an inner join ignores an
//! update whose previous foreign key was null, and leaves the result in
//! place when the foreign key becomes null). KAFKA-16407/16434 were fixed
//! after this snapshot (apache/kafka PR 19303, 2025).

use std::collections::BTreeMap;

use super::{Event, Kind, Output, Pair, Side};

/// What a subscription asks of the right side
/// (`SubscriptionWrapper.Instruction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instruction {
    DeleteNoAnswer,
    DeleteAndAnswer,
    AnswerNullIfNone,
    AnswerOnlyIfSome,
}

/// The state of a foreign-key join.
struct State {
    kind: Kind,
    /// Left key -> (value, time).
    left: BTreeMap<String, (String, i64)>,
    /// Right key -> (value, time).
    right: BTreeMap<String, (String, i64)>,
    /// (foreign key, left key) -> the left value subscribed with.
    subscriptions: BTreeMap<(String, String), Option<String>>,
    outputs: Vec<Output>,
}

impl State {
    /// One instruction, from the left update of `key` (new value `hash`,
    /// at `time`) to `fk`, answered at once.
    fn send(
        &mut self,
        at: usize,
        key: &str,
        fk: Option<String>,
        what: Instruction,
        hash: &Option<String>,
        time: i64,
    ) {
        // Receive: a null foreign key gets through only to be answered null.
        if fk.is_none() && what != Instruction::AnswerNullIfNone {
            return;
        }
        if let Some(f) = &fk {
            let id = (f.clone(), key.to_string());
            match what {
                Instruction::DeleteNoAnswer | Instruction::DeleteAndAnswer => {
                    self.subscriptions.remove(&id);
                }
                _ => {
                    self.subscriptions.insert(id, hash.clone());
                }
            }
        }
        // Join with the right value.
        let right = fk.as_ref().and_then(|f| self.right.get(f).cloned());
        let time = right.as_ref().map_or(time, |(_, t)| time.max(*t));
        let right = right.map(|(v, _)| v);
        match what {
            Instruction::DeleteNoAnswer => {}
            Instruction::DeleteAndAnswer => self.answer(at, key, hash, None, time),
            Instruction::AnswerNullIfNone => self.answer(at, key, hash, right, time),
            Instruction::AnswerOnlyIfSome => {
                if right.is_some() {
                    self.answer(at, key, hash, right, time);
                }
            }
        }
    }

    /// An answer back on the left side: dropped if stale.
    fn answer(
        &mut self,
        at: usize,
        key: &str,
        hash: &Option<String>,
        right: Option<String>,
        time: i64,
    ) {
        let current = self.left.get(key).map(|(v, _)| v.clone());
        if *hash != current {
            return;
        }
        let value = if right.is_none() && (self.kind == Kind::Inner || current.is_none()) {
            None
        } else {
            Some((current, right))
        };
        self.outputs.push(Output {
            at,
            key: Some(key.to_string()),
            value,
            time,
        });
    }
}

/// Replays `events` through a foreign-key join of type `kind` (inner or
/// left): left events are updates of the left table (key, value), right
/// events of the right table (foreign key, value); `fk(value)` extracts a
/// left value's foreign key (`None` for a null one).
pub fn join(events: &[Event], kind: Kind, fk: impl Fn(&str) -> Option<String>) -> Vec<Output> {
    assert!(
        kind != Kind::Outer,
        "Kafka Streams has no outer foreign-key join"
    );
    let mut s = State {
        kind,
        left: BTreeMap::new(),
        right: BTreeMap::new(),
        subscriptions: BTreeMap::new(),
        outputs: Vec::new(),
    };
    for (at, e) in events.iter().enumerate() {
        // Both tables drop null keys.
        let Some(key) = &e.key else { continue };
        match e.side {
            Side::Right => {
                match &e.value {
                    Some(v) => s.right.insert(key.clone(), (v.clone(), e.time)),
                    None => s.right.remove(key),
                };
                let subscribers: Vec<(String, Option<String>)> = s
                    .subscriptions
                    .iter()
                    .filter(|((f, _), _)| f == key)
                    .map(|((_, k), hash)| (k.clone(), hash.clone()))
                    .collect();
                for (k, hash) in subscribers {
                    s.answer(at, &k, &hash, e.value.clone(), e.time);
                }
            }
            Side::Left => {
                let old = s.left.get(key).map(|(v, _)| v.clone());
                match &e.value {
                    Some(v) => s.left.insert(key.clone(), (v.clone(), e.time)),
                    None => s.left.remove(key),
                };
                let new = e.value.clone();
                let t = e.time;
                use Instruction::*;
                match (kind, &old, &new) {
                    (_, None, None) => {}
                    (Kind::Left, Some(o), _) => {
                        let old_fk = fk(o);
                        let new_fk = new.as_deref().and_then(&fk);
                        if old_fk.is_some() && old_fk != new_fk {
                            s.send(at, key, old_fk, DeleteAndAnswer, &new, t);
                        }
                        s.send(at, key, new_fk, AnswerNullIfNone, &new, t);
                    }
                    (Kind::Left, None, Some(n)) => {
                        s.send(at, key, fk(n), AnswerNullIfNone, &new, t);
                    }
                    (_, Some(o), Some(n)) => {
                        let (Some(old_fk), Some(new_fk)) = (fk(o), fk(n)) else {
                            continue;
                        };
                        if old_fk != new_fk {
                            s.send(at, key, Some(old_fk), DeleteNoAnswer, &new, t);
                        }
                        s.send(at, key, Some(new_fk), AnswerNullIfNone, &new, t);
                    }
                    (_, Some(o), None) => {
                        if let Some(old_fk) = fk(o) {
                            s.send(at, key, Some(old_fk), DeleteAndAnswer, &new, t);
                        }
                    }
                    (_, None, Some(n)) => {
                        if let Some(new_fk) = fk(n) {
                            s.send(at, key, Some(new_fk), AnswerOnlyIfSome, &new, t);
                        }
                    }
                }
            }
        }
    }
    s.outputs
}

/// What the developer guide's table gives, without the code's defects
/// (what Sluice does): written directly, as the join's result changing
/// with each update, with no protocol. Per left update of key `k` (old
/// value `o`, new `n`): a null `n` deletes `k`'s result (inner: if `o`
/// named a right key; left: if `o` existed); a null foreign key gives
/// `(n, null)` (left) or deletes the result if `o` named a right key
/// (inner); a foreign key `f` gives `(n, R[f])`, or for an inner join
/// without `R[f]` a tombstone if `o` named a right key (nothing else).
/// Per right update of key `f` to `v`: each left row naming `f`, in key
/// order, gives `(row, v)`, or a tombstone for an inner join when `v` is
/// null. Times: the later of the left update's and `R[f]`'s, else the
/// right update's.
pub fn join_as_guide(
    events: &[Event],
    kind: Kind,
    fk: impl Fn(&str) -> Option<String>,
) -> Vec<Output> {
    assert!(kind != Kind::Outer, "no outer foreign-key join");
    let mut left: BTreeMap<String, String> = BTreeMap::new();
    let mut right: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let mut out = Vec::new();
    for (at, e) in events.iter().enumerate() {
        let Some(key) = &e.key else { continue };
        let emit = |value: Option<Pair>, time: i64| Output {
            at,
            key: Some(key.clone()),
            value,
            time,
        };
        match e.side {
            Side::Right => {
                match &e.value {
                    Some(v) => right.insert(key.clone(), (v.clone(), e.time)),
                    None => right.remove(key),
                };
                for (k, v) in &left {
                    if fk(v).as_ref() != Some(key) {
                        continue;
                    }
                    let value = match (&e.value, kind) {
                        (None, Kind::Inner) => None,
                        (r, _) => Some((Some(v.clone()), r.clone())),
                    };
                    out.push(Output {
                        at,
                        key: Some(k.clone()),
                        value,
                        time: e.time,
                    });
                }
            }
            Side::Left => {
                let old = match &e.value {
                    Some(v) => left.insert(key.clone(), v.clone()),
                    None => left.remove(key),
                };
                let named = old.as_deref().and_then(&fk).is_some();
                let had = match kind {
                    Kind::Inner => named,
                    _ => old.is_some(),
                };
                let Some(n) = &e.value else {
                    if had {
                        out.push(emit(None, e.time));
                    }
                    continue;
                };
                match fk(n) {
                    None if kind == Kind::Left => {
                        out.push(emit(Some((Some(n.clone()), None)), e.time))
                    }
                    None if had => out.push(emit(None, e.time)),
                    None => {}
                    Some(f) => match (right.get(&f), kind) {
                        (Some((r, rt)), _) => out.push(emit(
                            Some((Some(n.clone()), Some(r.clone()))),
                            e.time.max(*rt),
                        )),
                        (None, Kind::Left) => out.push(emit(Some((Some(n.clone()), None)), e.time)),
                        (None, _) if named => out.push(emit(None, e.time)),
                        (None, _) => {}
                    },
                }
            }
        }
    }
    out
}

/// The join result as a table, from scratch: each left row whose foreign
/// key names a right row (inner), or every left row (left, `None` on the
/// right when it names none). With the KAFKA-16407/16434 defects, the
/// replayed changelog can differ from this when foreign keys go to or from
/// null in an inner join; otherwise it must agree.
pub fn final_result(
    events: &[Event],
    kind: Kind,
    fk: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let mut tables: [BTreeMap<String, String>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for e in events {
        let Some(key) = &e.key else { continue };
        let t = &mut tables[if e.side == Side::Left { 0 } else { 1 }];
        match &e.value {
            Some(v) => t.insert(key.clone(), v.clone()),
            None => t.remove(key),
        };
    }
    let mut rows = BTreeMap::new();
    for (k, v) in &tables[0] {
        let right = fk(v).and_then(|f| tables[1].get(&f).cloned());
        if kind == Kind::Left || right.is_some() {
            rows.insert(k.clone(), (Some(v.clone()), right));
        }
    }
    rows
}
