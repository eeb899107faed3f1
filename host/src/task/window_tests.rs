//! Windowed aggregations against the independent reference models of
//! `sluice-reference` (plain arithmetic, sharing no code with the engine).
//!
//! Inputs have bounded disorder (some records later than the grace), and
//! the engine gets them in random call batches. Every case runs 50 seeds;
//! a failure names its seed, and `records(seed, spread)` replays it.

use crate::record::Record;
use crate::task::testing::Driver;
use sluice_reference::{self as reference, Reference, Results, Rng, records};

/// One output: (key, start, end, count), `None` for a tombstone.
type Emission = (String, i64, i64, Option<u64>);

/// Runs the records through a one-step windowed count in random call
/// batches; returns what it emitted and the late count.
fn run(records: &[(String, i64)], window: &str, emit: &str, seed: u64) -> (Vec<Emission>, u64) {
    let (emitted, counts) = run_counting(records, window, emit, seed);
    (emitted, counts.late)
}

/// [`run`], returning the run's counts.
fn run_counting(
    records: &[(String, i64)],
    window: &str,
    emit: &str,
    seed: u64,
) -> (Vec<Emission>, crate::task::Counts) {
    let text = format!(
        r#"
        application.id = "app"
        [state]
        store = "memory"
        [sources.events]
        [steps.counts]
        aggregate = "count"
        inputs = ["events"]
        window = {window}
        emit = "{emit}"
        [sinks.out]
        inputs = ["counts"]
    "#
    );
    let mut d = Driver::from_toml(&text).unwrap();
    let mut rng = Rng(seed | 1);
    let mut at = 0;
    while at < records.len() {
        let n = (1 + rng.below(40) as usize).min(records.len() - at);
        for (key, time) in &records[at..at + n] {
            d.push("events", Some(key.as_bytes()), Some(b"view"), Some(*time));
        }
        d.process().unwrap();
        at += n;
    }
    let emitted = d.sent().iter().map(|(_, r)| emission(r)).collect();
    (emitted, d.counts())
}

/// Reads an output record, checking its headers against its key.
fn emission(r: &Record) -> Emission {
    let key = String::from_utf8(r.key.as_deref().unwrap().to_vec()).unwrap();
    let (k, w) = key.split_once('@').unwrap();
    let (start, end) = w.split_once('/').unwrap();
    let (start, end) = (start.parse().unwrap(), end.parse().unwrap());
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
            .map(|v| std::str::from_utf8(v).unwrap().parse::<i64>().unwrap())
            .unwrap()
    };
    assert_eq!(header("sluice.window.start"), start);
    assert_eq!(header("sluice.window.end"), end);
    let count = r
        .value
        .as_deref()
        .map(|v| std::str::from_utf8(v).unwrap().parse().unwrap());
    (k.to_owned(), start, end, count)
}

/// Checks both emit modes of `window` against `reference` over 50 seeds,
/// with records up to `spread` ms out of order.
/// Returns the number of session merges the inputs caused.
fn check(window: &str, spread: i64, reference: impl Fn(&[(String, i64)]) -> Reference) -> u64 {
    let (mut late, mut closed, mut merges, mut partly) = (0, 0, 0, 0);
    for seed in 1..=50u64 {
        let input = records(seed, spread);
        let expected = reference(&input);
        late += expected.late;
        closed += expected.closed.len();
        merges += expected.merges;

        let (updates, counts) = run_counting(&input, window, "on-update", seed);
        let what = format!("{window}, on-update, seed {seed}");
        assert_eq!(counts.late, expected.late, "{what}: late records");
        if let Some(dropped) = expected.dropped {
            let got = reference::Dropped {
                partly_late: counts.partly_late,
                windows: counts.late_windows,
            };
            assert_eq!(got, dropped, "{what}: records dropped from some windows");
            partly += dropped.partly_late;
        }
        // Replayed as a table: the last update of each window, and a
        // tombstone takes a window away (a session merged into another).
        let mut table = Results::new();
        for (k, s, e, c) in updates {
            match c {
                Some(c) => table.insert((k, s, e), c),
                None => table.remove(&(k, s, e)),
            };
        }
        assert_eq!(table, expected.all, "{what}: final results");

        let (finals, _) = run(&input, window, "on-window-close", seed);
        let what = format!("{window}, on-window-close, seed {seed}");
        let mut emitted = Results::new();
        for (k, s, e, c) in finals {
            let c = c.unwrap_or_else(|| panic!("{what}: a tombstone for {k}@{s}/{e}"));
            assert!(
                emitted.insert((k.clone(), s, e), c).is_none(),
                "{what}: window {k}@{s}/{e} emitted twice"
            );
        }
        assert_eq!(
            emitted, expected.closed,
            "{what}: final results of closed windows"
        );
    }
    // The inputs reach the cases that matter.
    assert!(
        late > 50,
        "{window}: only {late} late records over 50 seeds"
    );
    assert!(closed > 500, "{window}: only {closed} closed windows");
    if window.contains("hopping") {
        assert!(
            partly > 50,
            "{window}: only {partly} partly late records over 50 seeds"
        );
    }
    merges
}

#[test]
fn tumbling_counts_equal_the_reference_over_50_seeds() {
    check(
        r#"{ type = "tumbling", size = 100, grace = 50 }"#,
        200,
        |r| reference::hopping(r, 100, 100, 50),
    );
    check(r#"{ type = "tumbling", size = 50 }"#, 60, |r| {
        reference::hopping(r, 50, 50, 0)
    });
}

#[test]
fn hopping_counts_equal_the_reference_over_50_seeds() {
    check(
        r#"{ type = "hopping", size = "100ms", advance = 30, grace = 20 }"#,
        180,
        |r| reference::hopping(r, 100, 30, 20),
    );
}

#[test]
fn sliding_counts_equal_the_reference_over_50_seeds() {
    check(
        r#"{ type = "sliding", difference = 60, grace = 40 }"#,
        150,
        |r| reference::sliding(r, 60, 40),
    );
}

#[test]
fn session_counts_equal_the_reference_over_50_seeds() {
    let merges = check(r#"{ type = "session", gap = 50, grace = 30 }"#, 80, |r| {
        reference::sessions(r, 50, 30)
    });
    assert!(merges > 50, "only {merges} session merges over 50 seeds");
}

#[test]
fn hopping_boundaries_are_exact() {
    // Tumbling 100, grace 50: a record at 100 opens [100, 200); stream
    // time 150 closes [0, 100), so a record at 99 then is late, and at
    // 149 it was not.
    let input: Vec<(String, i64)> = [100, 99, 149, 99, 150, 99]
        .iter()
        .map(|t| ("k".to_owned(), *t))
        .collect();
    let window = r#"{ type = "tumbling", size = 100, grace = 50 }"#;
    let (updates, late) = run(&input, window, "on-update", 1);
    assert_eq!(late, 1, "only the record after stream time reached 150");
    let per_window = |start: i64| -> Vec<u64> {
        updates
            .iter()
            .filter(|(_, s, _, _)| *s == start)
            .map(|(_, _, _, c)| c.unwrap())
            .collect()
    };
    assert_eq!(per_window(0), vec![1, 2], "99 at stream time 100 and 149");
    assert_eq!(per_window(100), vec![1, 2, 3], "100, 149 and 150");
    let (finals, _) = run(&input, window, "on-window-close", 1);
    assert_eq!(
        finals,
        vec![("k".to_owned(), 0, 100, Some(2))],
        "closed at exactly end + grace"
    );
}

#[test]
fn sliding_windows_follow_kip_450_at_the_edges() {
    let at = |times: &[i64]| -> Vec<(String, i64)> {
        times.iter().map(|t| ("k".to_owned(), *t)).collect()
    };
    let window = r#"{ type = "sliding", difference = 10, grace = 100 }"#;
    // 0 and 10 are exactly the difference apart: one window holds both.
    // 10's left window [0, 10] has both; 0's right window [1, 11] has 10.
    let (updates, late) = run(&at(&[0, 10]), window, "on-update", 1);
    assert_eq!(late, 0);
    let finals: Results = updates
        .into_iter()
        .map(|(k, s, e, c)| ((k, s, e), c.unwrap()))
        .collect();
    let k = |s: i64, e: i64, c: u64| (("k".to_owned(), s, e), c);
    assert_eq!(
        finals,
        Results::from([k(-10, 1, 1), k(0, 11, 2), k(1, 12, 1)]),
        "[-10, 0], [0, 10] and [1, 11], ends exclusive"
    );
    // 11 apart: no window holds both.
    let (updates, _) = run(&at(&[0, 11]), window, "on-update", 1);
    assert!(
        updates.iter().all(|(_, _, _, c)| *c == Some(1)),
        "{updates:?}"
    );
    // An out-of-order record between two others lands in both their
    // windows, and creates its own.
    let (updates, _) = run(&at(&[0, 10, 5]), window, "on-update", 1);
    let finals: Results = updates
        .into_iter()
        .map(|(k, s, e, c)| ((k, s, e), c.unwrap()))
        .collect();
    assert_eq!(
        finals,
        Results::from([
            k(-10, 1, 1),
            k(-5, 6, 2),
            k(0, 11, 3),
            k(1, 12, 2),
            k(6, 17, 1)
        ]),
    );
}

#[test]
fn a_late_record_that_bridges_two_sessions_merges_them() {
    let input: Vec<(String, i64)> = [0, 100, 50].iter().map(|t| ("u".to_owned(), *t)).collect();
    let window = r#"{ type = "session", gap = 60, grace = 100 }"#;
    let (updates, late) = run(&input, window, "on-update", 7);
    assert_eq!(late, 0);
    let last = updates.last().unwrap();
    assert_eq!(last, &("u".to_owned(), 0, 101, Some(3)), "{updates:?}");
    // Every earlier session emitted was retracted.
    let mut table = Results::new();
    for (k, s, e, c) in updates.iter().cloned() {
        match c {
            Some(c) => table.insert((k, s, e), c),
            None => table.remove(&(k, s, e)),
        };
    }
    assert_eq!(
        table,
        Results::from([(("u".to_owned(), 0, 101), 3)]),
        "{updates:?}"
    );
    // The same bridge after the first session closed (stream time 0 + 1 +
    // 60 + 0 reached) cannot reopen it.
    let window = r#"{ type = "session", gap = 60 }"#;
    let (finals, _) = run(
        &[
            ("u".to_owned(), 0),
            ("u".to_owned(), 100),
            ("u".to_owned(), 50),
        ],
        window,
        "on-window-close",
        7,
    );
    assert_eq!(finals, vec![("u".to_owned(), 0, 1, Some(1))], "{finals:?}");
}

#[test]
fn close_idle_after_closes_an_idle_tasks_windows_and_later_records_are_late() {
    let text = r#"
        application.id = "app"
        [state]
        store = "memory"
        [sources.events]
        [steps.counts]
        aggregate = "count"
        inputs = ["events"]
        window = { type = "tumbling", size = 100 }
        emit = "on-window-close"
        close.idle.after = "1m"
        [sinks.out]
        inputs = ["counts"]
    "#;
    let mut d = Driver::setup(text)
        .unwrap()
        .clock_at(1_000_000)
        .start()
        .unwrap();
    // One record, as a call batch of its own.
    let process = |d: &mut Driver, key: &str, time: i64| {
        d.push("events", Some(key.as_bytes()), Some(b"v"), Some(time));
        d.process().unwrap()
    };
    let emitted = |d: &mut Driver| -> Vec<Emission> {
        d.take_sent().iter().map(|(_, r)| emission(r)).collect()
    };

    for (key, time) in [("k", 10), ("k", 50), ("j", 120)] {
        process(&mut d, key, time);
    }
    assert_eq!(emitted(&mut d), vec![("k".to_owned(), 0, 100, Some(2))]);
    // [100, 200) of j waits for stream time 200, which no record brings.
    assert!(d.close_idle(false).unwrap().is_none(), "not idle yet");
    d.advance(59_999);
    assert!(d.close_idle(false).unwrap().is_none(), "1 ms short");
    assert!(d.sent().is_empty());
    d.advance(1);
    let counts = d.close_idle(false).unwrap().expect("idle for 1m");
    assert_eq!(counts.records_in, 0, "closing reads no record");
    assert_eq!(emitted(&mut d), vec![("j".to_owned(), 100, 200, Some(1))]);
    assert_eq!(
        d.task().stream_time(),
        Some(200),
        "as if a record at 200 came"
    );
    d.advance(600_000);
    assert!(
        d.close_idle(false).unwrap().is_none(),
        "closed once per idle period"
    );

    // A record for the closed window is late; a later one opens a window.
    let counts = process(&mut d, "j", 150);
    assert_eq!(counts.late, 1, "its window was closed for idleness");
    process(&mut d, "j", 230);
    assert!(d.sent().is_empty());
    d.advance(60_000);
    d.close_idle(false).unwrap().expect("idle again");
    assert_eq!(emitted(&mut d), vec![("j".to_owned(), 200, 300, Some(1))]);

    // Forced (`sluice dev --idle-close`): at once, with the clock still.
    process(&mut d, "k", 310);
    assert!(d.close_idle(false).unwrap().is_none());
    d.close_idle(true).unwrap().expect("forced");
    assert_eq!(emitted(&mut d), vec![("k".to_owned(), 300, 400, Some(1))]);
    assert!(d.close_idle(true).unwrap().is_none(), "nothing left open");
}
