//! The join semantics tables of the Kafka Streams developer guide,
//! transcribed.
//!
//! Source: `docs/streams/developer-guide/dsl-api.html` of apache/kafka at
//! commit `1eb7644` (2024-10-25; `gradle.properties` version
//! `4.0.0-SNAPSHOT`, `docs/js/templateData.js` docs version 4.0), section
//! "Joining": "Semantics of stream-stream joins", "Semantics of
//! table-table equi-joins", "Semantics of table-table foreign-key joins"
//! and "Semantics of stream-table joins". The KStream–GlobalKTable section
//! has no table (only prose: like a KStream–KTable join, but "not a
//! temporal join" and with the stream record mapped to the table's key
//! first), so there is none here. The stream–stream table as it stood
//! before Kafka 3.1 is transcribed too, from the same file at `d6f6edd`
//! (the parent of `f6351a9`, "MINOR: update stream-stream join docs",
//! 2021-08-05).
//!
//! Each row is one input record, on the left or the right, in the table's
//! order (which is timestamp order: the guide assumes "all records are
//! processed in timestamp order" and, but for the foreign-key table, "all
//! records have the same key": [`KEY`]). The output columns list "what is
//! passed as arguments to the user-supplied ValueJoiner ... whenever a new
//! input record is received"; an empty cell is no output. The guide's
//! `[A, a]` is [`Out::Pair`]`(Some("A"), Some("a"))`, its `[E, null]` a
//! pair with `None`, and its bare `null` (table joins) [`Out::Tombstone`].
//!
//! The transcription is literal. Where the current code gives something
//! else, the difference is kept beside the table (`*_CODE` constants),
//! saying why, and the tests check the models against the code while
//! checking that the code differs from the guide exactly there.

/// The key of every record of the equi-join tables (the guide omits it).
pub const KEY: &str = "k";

/// An input cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// No record on this side in this row.
    Empty,
    /// A record with a null value (`null` in the guide).
    Null,
    /// A record with this value.
    Value(&'static str),
}

/// An output: a joined pair or a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// `[left, right]`; `None` is the guide's `null` inside a pair.
    Pair(Option<&'static str>, Option<&'static str>),
    /// A result tombstone (`null` alone in a table join's column).
    Tombstone,
}

/// One row of an equi-join table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The row's timestamp, also the record's time.
    pub time: i64,
    /// The left input's cell.
    pub left: Cell,
    /// The right input's cell.
    pub right: Cell,
    /// The (INNER) JOIN column.
    pub inner: &'static [Out],
    /// The LEFT JOIN column.
    pub left_join: &'static [Out],
    /// The OUTER JOIN column (empty for joins without one).
    pub outer: &'static [Out],
}

impl Row {
    /// The column for a join type.
    pub fn column(&self, kind: super::Kind) -> &'static [Out] {
        match kind {
            super::Kind::Inner => self.inner,
            super::Kind::Left => self.left_join,
            super::Kind::Outer => self.outer,
        }
    }
}

/// An equi-join table: its rows and the join parameters it assumes.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Its heading in the guide.
    pub name: &'static str,
    /// Its rows.
    pub rows: &'static [Row],
    /// The join types it has columns for.
    pub kinds: &'static [super::Kind],
}

use super::Kind;
use Cell::{Empty, Null, Value};
use Out::{Pair, Tombstone};

const fn row(
    time: i64,
    left: Cell,
    right: Cell,
    inner: &'static [Out],
    left_join: &'static [Out],
    outer: &'static [Out],
) -> Row {
    Row {
        time,
        left,
        right,
        inner,
        left_join,
        outer,
    }
}

const fn p(l: &'static str, r: &'static str) -> Out {
    Pair(Some(l), Some(r))
}

const fn lp(l: &'static str) -> Out {
    Pair(Some(l), None)
}

const fn rp(r: &'static str) -> Out {
    Pair(None, Some(r))
}

const NONE: &[Out] = &[];

/// "Semantics of stream-stream joins", as of 4.0: "We assume a join window
/// size of 15 seconds with a grace period of 5 seconds" (times in the
/// table are taken as seconds; the model uses the same unit for window
/// and grace). The `...` rows of the guide stand for no records.
///
/// Not as the code does it: rows 60, 80 and 100. See
/// [`STREAM_STREAM_CODE`].
pub const STREAM_STREAM: Table = Table {
    name: "Semantics of stream-stream joins",
    kinds: &Kind::ALL,
    rows: &[
        row(1, Null, Empty, NONE, NONE, NONE),
        row(2, Empty, Null, NONE, NONE, NONE),
        row(3, Value("A"), Empty, NONE, NONE, NONE),
        row(
            4,
            Empty,
            Value("a"),
            &[p("A", "a")],
            &[p("A", "a")],
            &[p("A", "a")],
        ),
        row(
            5,
            Value("B"),
            Empty,
            &[p("B", "a")],
            &[p("B", "a")],
            &[p("B", "a")],
        ),
        row(
            6,
            Empty,
            Value("b"),
            &[p("A", "b"), p("B", "b")],
            &[p("A", "b"), p("B", "b")],
            &[p("A", "b"), p("B", "b")],
        ),
        row(7, Null, Empty, NONE, NONE, NONE),
        row(8, Empty, Null, NONE, NONE, NONE),
        row(
            9,
            Value("C"),
            Empty,
            &[p("C", "a"), p("C", "b")],
            &[p("C", "a"), p("C", "b")],
            &[p("C", "a"), p("C", "b")],
        ),
        row(
            10,
            Empty,
            Value("c"),
            &[p("A", "c"), p("B", "c"), p("C", "c")],
            &[p("A", "c"), p("B", "c"), p("C", "c")],
            &[p("A", "c"), p("B", "c"), p("C", "c")],
        ),
        row(11, Empty, Null, NONE, NONE, NONE),
        row(12, Null, Empty, NONE, NONE, NONE),
        row(13, Empty, Null, NONE, NONE, NONE),
        row(
            14,
            Empty,
            Value("d"),
            &[p("A", "d"), p("B", "d"), p("C", "d")],
            &[p("A", "d"), p("B", "d"), p("C", "d")],
            &[p("A", "d"), p("B", "d"), p("C", "d")],
        ),
        row(
            15,
            Value("D"),
            Empty,
            &[p("D", "a"), p("D", "b"), p("D", "c"), p("D", "d")],
            &[p("D", "a"), p("D", "b"), p("D", "c"), p("D", "d")],
            &[p("D", "a"), p("D", "b"), p("D", "c"), p("D", "d")],
        ),
        row(40, Value("E"), Empty, NONE, NONE, NONE),
        row(60, Value("F"), Empty, NONE, &[lp("E")], &[lp("E")]),
        row(80, Empty, Value("f"), NONE, &[lp("F")], &[lp("F")]),
        row(100, Value("G"), Empty, NONE, NONE, &[rp("f")]),
    ],
};

/// The stream-stream table's window and grace: 15 and 5.
pub const STREAM_STREAM_WINDOW: (i64, i64) = (15, 5);

/// What the code (`KStreamKStreamJoin`) gives for [`STREAM_STREAM`]'s
/// rows where it differs from the guide: (row time, join type, outputs).
///
/// An unmatched record is emitted once stream time is *past* its
/// window's end plus grace (`isOuterJoinWindowOpen`: still open while
/// `time + after + grace >= stream time`; the window's end is inclusive).
/// E at 40 closes after 40 + 15 + 5 = 60, so at F (60) it is still open
/// and comes out at the next record, f (80); F (60) at G (100); f (80,
/// closing after 100) is still pending after G. The table's last four rows
/// were written in 2021 (`f6351a9`) for "a join window size of 10
/// seconds", where they hold (E closes after 55, F after 75, f after 95);
/// `46b6147` ("fix stream-stream-join semantic example from 10s window to
/// 15s", 2024-10-08) changed the window to 15 so that rows 14 and 15 hold
/// (d at 14 joins A at 3, D at 15 joins a at 4), without moving the late
/// rows. With 15 the first fifteen rows hold, with 10 the last four; no
/// window makes the whole table true. (The guide's late rows would also
/// hold with 15 if a window closed *at* its end plus grace; Kafka's own
/// `KStreamKStreamOuterJoinTest.testEmitAllNonJoinedResultsForAsymmetricWindow`
/// pins the strict rule: a right record at 31 with `before` 5 and no
/// grace is still pending at 36 and comes out at 37. See
/// [`super::scenarios`].)
pub const STREAM_STREAM_CODE: &[(i64, Kind, &[Out])] = &[
    (60, Kind::Left, NONE),
    (60, Kind::Outer, NONE),
    (80, Kind::Left, &[lp("E")]),
    (80, Kind::Outer, &[lp("E")]),
    (100, Kind::Left, &[lp("F")]),
    (100, Kind::Outer, &[lp("F")]),
];

/// The stream-stream table before Kafka 3.1 (`dsl-api.html` at `d6f6edd`,
/// 2021-08-05), when left and outer results were emitted eagerly: it
/// assumed "all records belong to a single join window" and showed
/// `[A, null]` at 3. Since 3.1 (KIP-633, KAFKA-10847) that is what the
/// deprecated `JoinWindows.of(...)` API still gives ("Caution: using the
/// deprecated JoinWindows.of(...).grace(...) API might result in eagerly
/// emitted spurious left results"); the model's
/// [`eager`](super::stream_stream::Windows::eager) windows.
pub const STREAM_STREAM_BEFORE_3_1: Table = Table {
    name: "Semantics of stream-stream joins (before 3.1)",
    kinds: &Kind::ALL,
    rows: &[
        row(1, Null, Empty, NONE, NONE, NONE),
        row(2, Empty, Null, NONE, NONE, NONE),
        row(3, Value("A"), Empty, NONE, &[lp("A")], &[lp("A")]),
        row(
            4,
            Empty,
            Value("a"),
            &[p("A", "a")],
            &[p("A", "a")],
            &[p("A", "a")],
        ),
        row(
            5,
            Value("B"),
            Empty,
            &[p("B", "a")],
            &[p("B", "a")],
            &[p("B", "a")],
        ),
        row(
            6,
            Empty,
            Value("b"),
            &[p("A", "b"), p("B", "b")],
            &[p("A", "b"), p("B", "b")],
            &[p("A", "b"), p("B", "b")],
        ),
        row(7, Null, Empty, NONE, NONE, NONE),
        row(8, Empty, Null, NONE, NONE, NONE),
        row(
            9,
            Value("C"),
            Empty,
            &[p("C", "a"), p("C", "b")],
            &[p("C", "a"), p("C", "b")],
            &[p("C", "a"), p("C", "b")],
        ),
        row(
            10,
            Empty,
            Value("c"),
            &[p("A", "c"), p("B", "c"), p("C", "c")],
            &[p("A", "c"), p("B", "c"), p("C", "c")],
            &[p("A", "c"), p("B", "c"), p("C", "c")],
        ),
        row(11, Empty, Null, NONE, NONE, NONE),
        row(12, Null, Empty, NONE, NONE, NONE),
        row(13, Empty, Null, NONE, NONE, NONE),
        row(
            14,
            Empty,
            Value("d"),
            &[p("A", "d"), p("B", "d"), p("C", "d")],
            &[p("A", "d"), p("B", "d"), p("C", "d")],
            &[p("A", "d"), p("B", "d"), p("C", "d")],
        ),
        row(
            15,
            Value("D"),
            Empty,
            &[p("D", "a"), p("D", "b"), p("D", "c"), p("D", "d")],
            &[p("D", "a"), p("D", "b"), p("D", "c"), p("D", "d")],
            &[p("D", "a"), p("D", "b"), p("D", "c"), p("D", "d")],
        ),
    ],
};

/// "Semantics of table-table equi-joins". The code agrees row by row
/// (`TableTableJoinIntegrationTest`'s first thirteen inputs are these
/// rows, with the same results; see [`super::scenarios`]).
pub const TABLE_TABLE: Table = Table {
    name: "Semantics of table-table equi-joins",
    kinds: &Kind::ALL,
    rows: &[
        row(1, Null, Empty, NONE, NONE, NONE),
        row(2, Empty, Null, NONE, NONE, NONE),
        row(3, Value("A"), Empty, NONE, &[lp("A")], &[lp("A")]),
        row(
            4,
            Empty,
            Value("a"),
            &[p("A", "a")],
            &[p("A", "a")],
            &[p("A", "a")],
        ),
        row(
            5,
            Value("B"),
            Empty,
            &[p("B", "a")],
            &[p("B", "a")],
            &[p("B", "a")],
        ),
        row(
            6,
            Empty,
            Value("b"),
            &[p("B", "b")],
            &[p("B", "b")],
            &[p("B", "b")],
        ),
        row(7, Null, Empty, &[Tombstone], &[Tombstone], &[rp("b")]),
        row(8, Empty, Null, NONE, NONE, &[Tombstone]),
        row(9, Value("C"), Empty, NONE, &[lp("C")], &[lp("C")]),
        row(
            10,
            Empty,
            Value("c"),
            &[p("C", "c")],
            &[p("C", "c")],
            &[p("C", "c")],
        ),
        row(11, Empty, Null, &[Tombstone], &[lp("C")], &[lp("C")]),
        row(12, Null, Empty, NONE, &[Tombstone], &[Tombstone]),
        row(13, Empty, Null, NONE, NONE, NONE),
        row(14, Empty, Value("d"), NONE, NONE, &[rp("d")]),
        row(
            15,
            Value("D"),
            Empty,
            &[p("D", "d")],
            &[p("D", "d")],
            &[p("D", "d")],
        ),
    ],
};

/// "Semantics of stream-table joins" (left: KStream, right: KTable; no
/// outer join). The code agrees row by row.
pub const STREAM_TABLE: Table = Table {
    name: "Semantics of stream-table joins",
    kinds: &[Kind::Inner, Kind::Left],
    rows: &[
        row(1, Null, Empty, NONE, NONE, NONE),
        row(2, Empty, Null, NONE, NONE, NONE),
        row(3, Value("A"), Empty, NONE, &[lp("A")], NONE),
        row(4, Empty, Value("a"), NONE, NONE, NONE),
        row(5, Value("B"), Empty, &[p("B", "a")], &[p("B", "a")], NONE),
        row(6, Empty, Value("b"), NONE, NONE, NONE),
        row(7, Null, Empty, NONE, NONE, NONE),
        row(8, Empty, Null, NONE, NONE, NONE),
        row(9, Value("C"), Empty, NONE, &[lp("C")], NONE),
        row(10, Empty, Value("c"), NONE, NONE, NONE),
        row(11, Empty, Null, NONE, NONE, NONE),
        row(12, Null, Empty, NONE, NONE, NONE),
        row(13, Empty, Null, NONE, NONE, NONE),
        row(14, Empty, Value("d"), NONE, NONE, NONE),
        row(15, Value("D"), Empty, &[p("D", "d")], &[p("D", "d")], NONE),
    ],
};

/// A foreign-key table output: (left key, joined pair or tombstone).
pub type FkOut = (&'static str, Out);

/// One row of the foreign-key table.
#[derive(Debug, Clone, Copy)]
pub struct FkRow {
    /// The guide's "Record Offset", also used as the records' time.
    pub offset: i64,
    /// "Left KTable (K, extracted-FK)": (key, value), the value being its
    /// own foreign key; `None` value for `(k,null)`.
    pub left: Option<(&'static str, Option<&'static str>)>,
    /// "Right KTable (FK, VR)": (key, value).
    pub right: Option<(&'static str, Option<&'static str>)>,
    /// The (INNER) JOIN column.
    pub inner: &'static [FkOut],
    /// The LEFT JOIN column.
    pub left_join: &'static [FkOut],
}

const fn fk(key: &'static str, l: &'static str, r: &'static str) -> FkOut {
    (key, Pair(Some(l), Some(r)))
}

const fn fk_left(key: &'static str, l: &'static str) -> FkOut {
    (key, Pair(Some(l), None))
}

const fn fk_gone(key: &'static str) -> FkOut {
    (key, Tombstone)
}

/// "Semantics of table-table foreign-key joins": "Records are processed
/// in incrementing offset order ... foreignKeyExtractor simply uses the
/// left-value as the output". The guide writes a result as `(k,1,foo)`
/// (key, left value, right value), an inner tombstone as `(k,null)` and a
/// left-join one as `(k,null,null)`; both are [`Out::Tombstone`] here (a
/// left join's result with a null left value is a tombstone:
/// `ResponseJoinProcessorSupplier`).
///
/// Row 1 has a record on both sides; the model takes the right one first,
/// the only order in which the left join gives the single `(k,1,foo)` the
/// guide shows (left first, it gives `(k,1,null)` and then `(k,1,foo)`).
///
/// Not as the code does it: left join rows 2, 3 and 5, where the code
/// gives the guide's result twice. See [`FOREIGN_KEY_CODE`].
pub const FOREIGN_KEY: &[FkRow] = &[
    FkRow {
        offset: 1,
        left: Some(("k", Some("1"))),
        right: Some(("1", Some("foo"))),
        inner: &[fk("k", "1", "foo")],
        left_join: &[fk("k", "1", "foo")],
    },
    FkRow {
        offset: 2,
        left: Some(("k", Some("2"))),
        right: None,
        inner: &[fk_gone("k")],
        left_join: &[fk_left("k", "2")],
    },
    FkRow {
        offset: 3,
        left: Some(("k", Some("3"))),
        right: None,
        inner: &[fk_gone("k")],
        left_join: &[fk_left("k", "3")],
    },
    FkRow {
        offset: 4,
        left: None,
        right: Some(("3", Some("bar"))),
        inner: &[fk("k", "3", "bar")],
        left_join: &[fk("k", "3", "bar")],
    },
    FkRow {
        offset: 5,
        left: Some(("k", None)),
        right: None,
        inner: &[fk_gone("k")],
        left_join: &[fk_gone("k")],
    },
    FkRow {
        offset: 6,
        left: Some(("k", Some("1"))),
        right: None,
        inner: &[fk("k", "1", "foo")],
        left_join: &[fk("k", "1", "foo")],
    },
    FkRow {
        offset: 7,
        left: Some(("q", Some("10"))),
        right: None,
        inner: &[],
        left_join: &[fk_left("q", "10")],
    },
    FkRow {
        offset: 8,
        left: Some(("r", Some("10"))),
        right: None,
        inner: &[],
        left_join: &[fk_left("r", "10")],
    },
    FkRow {
        offset: 9,
        left: None,
        right: Some(("10", Some("baz"))),
        inner: &[fk("q", "10", "baz"), fk("r", "10", "baz")],
        left_join: &[fk("q", "10", "baz"), fk("r", "10", "baz")],
    },
];

/// What the code gives for [`FOREIGN_KEY`]'s left-join rows where it
/// differs from the guide: (offset, outputs). Read from
/// `SubscriptionSendProcessorSupplier.leftJoinInstructions`: when the
/// foreign key changes (rows 2, 3) the old key gets "delete and answer"
/// and the new one "answer, null if none", and each answer gives a
/// result; a deleted left value (row 5) sends "delete and answer" to its
/// old foreign key and "answer, null if none" to the null foreign key,
/// and each gives a tombstone. Reported as KAFKA-16394 ("Null should not
/// be propagated twice in the join result when deleting a primary key");
/// Kafka's tests read the output as a map, which hides the duplicates.
/// The last result per key is the guide's, so the result table agrees.
pub const FOREIGN_KEY_CODE: &[(i64, &[FkOut])] = &[
    (2, &[fk_left("k", "2"), fk_left("k", "2")]),
    (3, &[fk_left("k", "3"), fk_left("k", "3")]),
    (5, &[fk_gone("k"), fk_gone("k")]),
];
