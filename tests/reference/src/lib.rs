//! Reference models of Sluice's windowed aggregations and of Kafka
//! Streams' joins ([`joins`]), for the tests.
//!
//! The window models are plain arithmetic over a list of `(key, event
//! time)` records, sharing no code with the engine: each model replays
//! one partition in offset order with its own stream time, so it drops the
//! same late records the engine must drop. Brute force is the point:
//! each rule is written the most direct way, not the fastest.
//!
//! Windows are half-open, `[start, end)`, as in Sluice's output keys.

use std::collections::BTreeMap;

pub mod joins;

/// (key, start, end) -> count. Ends are exclusive.
pub type Results = BTreeMap<(String, i64, i64), u64>;

/// What a reference computes: every window's final count, the windows
/// closed by the end (their final results), and the late records.
pub struct Reference {
    /// Every window's final count.
    pub all: Results,
    /// The windows closed by the end, with their counts.
    pub closed: Results,
    /// Records too late for every window.
    pub late: u64,
    /// Tumbling and hopping: records too late for some of their windows
    /// but not all, and the (record, window) pairs dropped, late and
    /// partly late records together. `None` from the other models.
    pub dropped: Option<Dropped>,
    /// Records that joined two or more sessions (sessions only).
    pub merges: u64,
}

/// Records dropped from some windows (see [`Reference::dropped`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Records some windows took while others had closed.
    pub partly_late: u64,
    /// (record, window) pairs dropped because the window had closed.
    pub windows: u64,
}

/// Tumbling and hopping windows.
pub fn hopping(records: &[(String, i64)], size: i64, advance: i64, grace: i64) -> Reference {
    let mut all: Results = BTreeMap::new();
    let mut stream = i64::MIN;
    let mut late = 0;
    let mut dropped = Dropped::default();
    let merges = 0;
    for (key, t) in records {
        stream = stream.max(*t);
        let (mut taken, mut refused) = (0, 0);
        let mut start = t - t.rem_euclid(advance);
        while start + size > *t {
            if stream < start + size + grace {
                *all.entry((key.clone(), start, start + size)).or_default() += 1;
                taken += 1;
            } else {
                refused += 1;
            }
            start -= advance;
        }
        dropped.windows += refused;
        if taken == 0 {
            late += 1;
        } else if refused > 0 {
            dropped.partly_late += 1;
        }
    }
    let closed = all
        .iter()
        .filter(|((_, _, end), _)| end + grace <= stream)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    Reference {
        all,
        closed,
        late,
        dropped: Some(dropped),
        merges,
    }
}

/// Sliding windows of difference `d` (KIP-450): a window `[s, s + d]`
/// exists when a record ends it (a left window) or when one record is
/// just before it and another inside it (a right window); it counts the
/// records inside it that arrived while it was open.
pub fn sliding(records: &[(String, i64)], d: i64, grace: i64) -> Reference {
    // key -> start -> count; key -> accepted times.
    let mut windows: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut stream = i64::MIN;
    let mut late = 0;
    let merges = 0;
    for (key, t) in records {
        let t = *t;
        stream = stream.max(t);
        let open = |start: i64| stream < start + d + 1 + grace;
        let ws = windows.entry(key.clone()).or_default();
        let times = seen.entry(key.clone()).or_default();
        let inside = |times: &[i64], from: i64, to: i64| {
            times.iter().filter(|&&x| from <= x && x <= to).count() as u64
        };
        let mut into: Vec<i64> = ws
            .keys()
            .copied()
            .filter(|&s| s <= t && t <= s + d && open(s))
            .collect();
        let mut new = Vec::new();
        if !ws.contains_key(&(t - d)) && open(t - d) {
            new.push(t - d);
        }
        if let Some(q) = times
            .iter()
            .copied()
            .filter(|&x| x < t && x >= t - d - 1)
            .max()
        {
            let s = q + 1;
            if s != t - d && !ws.contains_key(&s) && open(s) {
                new.push(s);
            }
        }
        if into.is_empty() && new.is_empty() {
            late += 1;
            continue;
        }
        for s in new {
            ws.insert(s, inside(times, s, s + d));
            into.push(s);
        }
        if !ws.contains_key(&(t + 1)) && inside(times, t + 1, t + 1 + d) > 0 && open(t + 1) {
            ws.insert(t + 1, inside(times, t + 1, t + 1 + d));
        }
        for s in into {
            *ws.get_mut(&s).expect("created above") += 1;
        }
        times.push(t);
    }
    let mut all = Results::new();
    for (key, ws) in windows {
        for (s, c) in ws {
            all.insert((key.clone(), s, s + d + 1), c);
        }
    }
    let closed = all
        .iter()
        .filter(|((_, _, end), _)| end + grace <= stream)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    Reference {
        all,
        closed,
        late,
        dropped: None,
        merges,
    }
}

/// Session windows with inactivity `gap`: a record joins every open
/// session it is within `gap` of, merging them; it is late when the
/// merged session's end plus grace is at or before the stream time.
pub fn sessions(records: &[(String, i64)], gap: i64, grace: i64) -> Reference {
    // key -> [(first, last, count)]
    let mut sessions: BTreeMap<String, Vec<(i64, i64, u64)>> = BTreeMap::new();
    let mut stream = i64::MIN;
    let mut late = 0;
    let mut merges = 0;
    for (key, t) in records {
        let t = *t;
        stream = stream.max(t);
        let list = sessions.entry(key.clone()).or_default();
        let closed = |last: i64| last + 1 + gap + grace <= stream;
        let joins = |&(first, last, _): &(i64, i64, u64)| {
            last >= t - gap && first <= t + gap && !closed(last)
        };
        let (mut first, mut last, mut count) = (t, t, 1);
        for s in list.iter().filter(|s| joins(s)) {
            first = first.min(s.0);
            last = last.max(s.1);
            count += s.2;
        }
        if last + 1 + grace <= stream {
            late += 1;
            continue;
        }
        let before = list.len();
        list.retain(|s| !joins(s));
        if before - list.len() >= 2 {
            merges += 1;
        }
        list.push((first, last, count));
    }
    let mut all = Results::new();
    let mut closed = Results::new();
    for (key, list) in sessions {
        for (first, last, count) in list {
            all.insert((key.clone(), first, last + 1), count);
            if last + 1 + gap + grace <= stream {
                closed.insert((key.clone(), first, last + 1), count);
            }
        }
    }
    Reference {
        all,
        closed,
        late,
        dropped: None,
        merges,
    }
}

/// xorshift64: the tests' only source of randomness.
pub struct Rng(pub u64);
impl Rng {
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Records with bounded disorder: time moves forward in steps of 10 (with
/// an occasional long pause, so that sessions end), and each record is
/// late by up to `spread`: chosen per case so that some records are beyond
/// every window's grace.
pub fn records(seed: u64, spread: i64) -> Vec<(String, i64)> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut now = 1_000;
    (0..400)
        .map(|_| {
            now += 10 * rng.below(4) as i64;
            if rng.below(40) == 0 {
                now += 300;
            }
            let lateness = 10 * rng.below((spread / 10 + 1) as u64) as i64;
            (format!("k{}", rng.below(3)), (now - lateness).max(0))
        })
        .collect()
}
