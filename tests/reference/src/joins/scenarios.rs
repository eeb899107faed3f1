//! Scenarios from Kafka Streams' own tests, transcribed: what the code
//! does, with output timestamps, out-of-order input and late records
//! (which the guide's tables leave out).
//!
//! Source: apache/kafka `1eb7644` (4.0.0-SNAPSHOT),
//! `streams/src/test/java/org/apache/kafka/streams/`:
//!
//! - `integration/AbstractJoinIntegrationTest.java` (the inputs `input`
//!   and `inputWithoutOutOfOrderData`), with the expected results of
//!   `integration/TableTableJoinIntegrationTest.java` (`testInner`,
//!   `testLeft`, `testOuter`, caching off), `StreamTableJoinIntegrationTest`
//!   (`testInner`, `testLeft`) and `StreamStreamJoinIntegrationTest`
//!   (`testInner`, `testLeft`, `testOuter`). Their timestamps are offsets
//!   from the test's start (the tests add a base time to all of them);
//!   `ANY_UNIQUE_KEY` (0) is the key "0". Joiner outputs such as `"A-a"`
//!   are pairs here, a `null` value a tombstone.
//! - `kstream/internals/KStreamKStreamLeftJoinTest.java` (`testWindowing`
//!   with its `testUpperWindowBound` and `testLowerWindowBound`,
//!   `testGracePeriod`) and `KStreamKStreamOuterJoinTest.java`
//!   (`testGracePeriod`, `testEmitAllNonJoinedResultsForAsymmetricWindow`),
//!   integer keys written as strings.
//!
//! Each step is the records a test pipes in before it checks the output,
//! and the output it expects then (versioned-store and cached variants
//! are left out, as are the models').

use super::Kind;
use super::Side::{self, Left, Right};
use super::stream_stream::Windows;
use super::tables::Out::{self, Pair, Tombstone};

/// One input record: side, key, value, time.
pub type Input = (Side, Option<&'static str>, Option<&'static str>, i64);

/// One expected output: key, value, time.
pub type Expected = (Option<&'static str>, Out, i64);

/// The records a test pipes in, then the outputs it expects.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The records, in order.
    pub inputs: &'static [Input],
    /// Everything emitted while processing them, in order.
    pub expect: &'static [Expected],
}

/// Which join a scenario runs.
#[derive(Debug, Clone, Copy)]
pub enum Join {
    /// KStream–KStream with these windows.
    StreamStream(Windows),
    /// KStream–KTable.
    StreamTable,
    /// KTable–KTable.
    TableTable,
}

/// One of Kafka's test cases.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Test class and method.
    pub name: &'static str,
    /// The join.
    pub join: Join,
    /// Its type.
    pub kind: Kind,
    /// Its steps.
    pub steps: &'static [Step],
}

const K: Option<&str> = Some("0");
const N: Option<&str> = None;

const fn v(s: &'static str) -> Option<&'static str> {
    Some(s)
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

/// `AbstractJoinIntegrationTest.input` as one step per record, with the
/// expected outputs of each (`expect[i]` for `input[i]`).
const fn each(expect: &'static [&'static [Expected]; 23]) -> [Step; 23] {
    let mut steps = [Step {
        inputs: &[],
        expect: &[],
    }; 23];
    let mut i = 0;
    while i < 23 {
        steps[i] = Step {
            inputs: std::slice::from_ref(&INPUT[i]),
            expect: expect[i],
        };
        i += 1;
    }
    steps
}

/// `inputWithoutOutOfOrderData` as one step per record.
const fn each_in_order(expect: &'static [&'static [Expected]; 17]) -> [Step; 17] {
    let mut steps = [Step {
        inputs: &[],
        expect: &[],
    }; 17];
    let mut i = 0;
    while i < 17 {
        steps[i] = Step {
            inputs: std::slice::from_ref(&INPUT_IN_ORDER[i]),
            expect: expect[i],
        };
        i += 1;
    }
    steps
}

/// `AbstractJoinIntegrationTest.input`: the guide's first thirteen rows,
/// then out-of-order records.
pub static INPUT: [Input; 23] = [
    (Left, K, N, 1),
    (Right, K, N, 2),
    (Left, K, v("A"), 3),
    (Right, K, v("a"), 4),
    (Left, K, v("B"), 5),
    (Right, K, v("b"), 6),
    (Left, K, N, 7),
    (Right, K, N, 8),
    (Left, K, v("C"), 9),
    (Right, K, v("c"), 10),
    (Right, K, N, 11),
    (Left, K, N, 12),
    (Right, K, N, 13),
    (Right, K, v("d"), 7), // out-of-order data with null as latest
    (Left, K, v("D"), 6),
    (Left, K, N, 2),
    (Right, K, N, 3),
    (Right, K, v("e"), 14),
    (Left, K, v("E"), 15),
    (Left, K, N, 10), // out-of-order data with non-null as latest
    (Right, K, N, 9),
    (Left, K, v("F"), 4),
    (Right, K, v("f"), 3),
];

/// `AbstractJoinIntegrationTest.inputWithoutOutOfOrderData`: the guide's
/// first fifteen rows, then a null-key record on each side.
pub static INPUT_IN_ORDER: [Input; 17] = [
    (Left, K, N, 1),
    (Right, K, N, 2),
    (Left, K, v("A"), 3),
    (Right, K, v("a"), 4),
    (Left, K, v("B"), 5),
    (Right, K, v("b"), 6),
    (Left, K, N, 7),
    (Right, K, N, 8),
    (Left, K, v("C"), 9),
    (Right, K, v("c"), 10),
    (Right, K, N, 11),
    (Left, K, N, 12),
    (Right, K, N, 13),
    (Right, K, v("d"), 14),
    (Left, K, v("D"), 15),
    (Left, N, v("E"), 16),
    (Right, N, v("e"), 17),
];

const TABLE_INNER: [Step; 23] = each(&[
    &[],
    &[],
    &[],
    &[(K, p("A", "a"), 4)],
    &[(K, p("B", "a"), 5)],
    &[(K, p("B", "b"), 6)],
    &[(K, Tombstone, 7)],
    &[],
    &[],
    &[(K, p("C", "c"), 10)],
    &[(K, Tombstone, 11)],
    &[],
    &[],
    &[],
    &[(K, p("D", "d"), 7)],
    &[(K, Tombstone, 7)],
    &[],
    &[],
    &[(K, p("E", "e"), 15)],
    &[(K, Tombstone, 14)],
    &[],
    &[],
    &[(K, p("F", "f"), 4)],
]);

const TABLE_LEFT: [Step; 23] = each(&[
    &[],
    &[],
    &[(K, lp("A"), 3)],
    &[(K, p("A", "a"), 4)],
    &[(K, p("B", "a"), 5)],
    &[(K, p("B", "b"), 6)],
    &[(K, Tombstone, 7)],
    &[],
    &[(K, lp("C"), 9)],
    &[(K, p("C", "c"), 10)],
    &[(K, lp("C"), 11)],
    &[(K, Tombstone, 12)],
    &[],
    &[],
    &[(K, p("D", "d"), 7)],
    &[(K, Tombstone, 7)],
    &[],
    &[],
    &[(K, p("E", "e"), 15)],
    &[(K, Tombstone, 14)],
    &[],
    &[(K, lp("F"), 4)],
    &[(K, p("F", "f"), 4)],
]);

const TABLE_OUTER: [Step; 23] = each(&[
    &[],
    &[],
    &[(K, lp("A"), 3)],
    &[(K, p("A", "a"), 4)],
    &[(K, p("B", "a"), 5)],
    &[(K, p("B", "b"), 6)],
    &[(K, rp("b"), 7)],
    &[(K, Tombstone, 8)],
    &[(K, lp("C"), 9)],
    &[(K, p("C", "c"), 10)],
    &[(K, lp("C"), 11)],
    &[(K, Tombstone, 12)],
    &[],
    &[(K, rp("d"), 7)],
    &[(K, p("D", "d"), 7)],
    &[(K, rp("d"), 7)],
    &[(K, Tombstone, 3)],
    &[(K, rp("e"), 14)],
    &[(K, p("E", "e"), 15)],
    &[(K, rp("e"), 14)],
    &[(K, Tombstone, 9)],
    &[(K, lp("F"), 4)],
    &[(K, p("F", "f"), 4)],
]);

const STREAM_TABLE_INNER: [Step; 23] = each(&[
    &[],
    &[],
    &[],
    &[],
    &[(K, p("B", "a"), 5)],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[(K, p("D", "d"), 6)],
    &[],
    &[],
    &[],
    &[(K, p("E", "e"), 15)],
    &[],
    &[],
    &[],
    &[],
]);

const STREAM_TABLE_LEFT: [Step; 23] = each(&[
    &[],
    &[],
    &[(K, lp("A"), 3)],
    &[],
    &[(K, p("B", "a"), 5)],
    &[],
    &[],
    &[],
    &[(K, lp("C"), 9)],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[(K, p("D", "d"), 6)],
    &[],
    &[],
    &[],
    &[(K, p("E", "e"), 15)],
    &[],
    &[],
    &[(K, lp("F"), 4)],
    &[],
]);

/// The stream-stream integration tests' outputs for the first fifteen
/// records (the same for all three join types).
macro_rules! stream_stream_steps {
    ($e16:expr, $e17:expr) => {
        each_in_order(&[
            &[],
            &[],
            &[],
            &[(K, p("A", "a"), 4)],
            &[(K, p("B", "a"), 5)],
            &[(K, p("A", "b"), 6), (K, p("B", "b"), 6)],
            &[],
            &[],
            &[(K, p("C", "a"), 9), (K, p("C", "b"), 9)],
            &[
                (K, p("A", "c"), 10),
                (K, p("B", "c"), 10),
                (K, p("C", "c"), 10),
            ],
            &[],
            &[],
            &[],
            &[
                (K, p("A", "d"), 14),
                (K, p("B", "d"), 14),
                (K, p("C", "d"), 14),
            ],
            &[
                (K, p("D", "a"), 15),
                (K, p("D", "b"), 15),
                (K, p("D", "c"), 15),
                (K, p("D", "d"), 15),
            ],
            $e16,
            $e17,
        ])
    };
}

const STREAM_STREAM_INNER: [Step; 17] = stream_stream_steps!(&[], &[]);
const STREAM_STREAM_LEFT: [Step; 17] = stream_stream_steps!(&[(N, lp("E"), 16)], &[]);
const STREAM_STREAM_OUTER: [Step; 17] =
    stream_stream_steps!(&[(N, lp("E"), 16)], &[(N, rp("e"), 17)]);

/// `JoinWindows.ofTimeDifferenceAndGrace(ofSeconds(10), ofHours(24))`.
const TEN_SECONDS: Windows = Windows {
    before: 10_000,
    after: 10_000,
    grace: 24 * 3_600_000,
    eager: false,
};

/// `KStreamKStreamLeftJoinTest.testWindowing`:
/// `ofTimeDifferenceWithNoGrace(ofMillis(100))`, keys 0 to 3.
const LEFT_WINDOWING: &[Step] = &[
    Step {
        inputs: &[(Left, v("0"), v("A0"), 0), (Left, v("1"), v("A1"), 0)],
        expect: &[],
    },
    Step {
        inputs: &[
            (Right, v("0"), v("a0"), 0),
            (Right, v("1"), v("a1"), 0),
            (Right, v("2"), v("a2"), 0),
            (Right, v("3"), v("a3"), 0),
        ],
        expect: &[(v("0"), p("A0", "a0"), 0), (v("1"), p("A1", "a1"), 0)],
    },
    // testUpperWindowBound
    Step {
        inputs: &[
            (Right, v("0"), v("b0"), 1000),
            (Right, v("1"), v("b1"), 1001),
            (Right, v("2"), v("b2"), 1002),
            (Right, v("3"), v("b3"), 1003),
        ],
        expect: &[],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("B0"), 1100),
            (Left, v("1"), v("B1"), 1100),
            (Left, v("2"), v("B2"), 1100),
            (Left, v("3"), v("B3"), 1100),
        ],
        expect: &[
            (v("0"), p("B0", "b0"), 1100),
            (v("1"), p("B1", "b1"), 1100),
            (v("2"), p("B2", "b2"), 1100),
            (v("3"), p("B3", "b3"), 1100),
        ],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("C0"), 1101),
            (Left, v("1"), v("C1"), 1101),
            (Left, v("2"), v("C2"), 1101),
            (Left, v("3"), v("C3"), 1101),
        ],
        expect: &[
            (v("1"), p("C1", "b1"), 1101),
            (v("2"), p("C2", "b2"), 1101),
            (v("3"), p("C3", "b3"), 1101),
        ],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("D0"), 1102),
            (Left, v("1"), v("D1"), 1102),
            (Left, v("2"), v("D2"), 1102),
            (Left, v("3"), v("D3"), 1102),
        ],
        expect: &[(v("2"), p("D2", "b2"), 1102), (v("3"), p("D3", "b3"), 1102)],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("E0"), 1103),
            (Left, v("1"), v("E1"), 1103),
            (Left, v("2"), v("E2"), 1103),
            (Left, v("3"), v("E3"), 1103),
        ],
        expect: &[(v("3"), p("E3", "b3"), 1103)],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("F0"), 1104),
            (Left, v("1"), v("F1"), 1104),
            (Left, v("2"), v("F2"), 1104),
            (Left, v("3"), v("F3"), 1104),
        ],
        expect: &[],
    },
    Step {
        inputs: &[(Left, v("0"), v("dummy"), 1405)],
        expect: &[
            (v("0"), lp("C0"), 1101),
            (v("0"), lp("D0"), 1102),
            (v("1"), lp("D1"), 1102),
            (v("0"), lp("E0"), 1103),
            (v("1"), lp("E1"), 1103),
            (v("2"), lp("E2"), 1103),
            (v("0"), lp("F0"), 1104),
            (v("1"), lp("F1"), 1104),
            (v("2"), lp("F2"), 1104),
            (v("3"), lp("F3"), 1104),
        ],
    },
    // testLowerWindowBound: late records, joined and emitted at once
    Step {
        inputs: &[
            (Left, v("0"), v("G0"), 899),
            (Left, v("1"), v("G1"), 899),
            (Left, v("2"), v("G2"), 899),
            (Left, v("3"), v("G3"), 899),
        ],
        expect: &[
            (v("0"), lp("G0"), 899),
            (v("1"), lp("G1"), 899),
            (v("2"), lp("G2"), 899),
            (v("3"), lp("G3"), 899),
        ],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("H0"), 900),
            (Left, v("1"), v("H1"), 900),
            (Left, v("2"), v("H2"), 900),
            (Left, v("3"), v("H3"), 900),
        ],
        expect: &[
            (v("0"), p("H0", "b0"), 1000),
            (v("1"), lp("H1"), 900),
            (v("2"), lp("H2"), 900),
            (v("3"), lp("H3"), 900),
        ],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("I0"), 901),
            (Left, v("1"), v("I1"), 901),
            (Left, v("2"), v("I2"), 901),
            (Left, v("3"), v("I3"), 901),
        ],
        expect: &[
            (v("0"), p("I0", "b0"), 1000),
            (v("1"), p("I1", "b1"), 1001),
            (v("2"), lp("I2"), 901),
            (v("3"), lp("I3"), 901),
        ],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("J0"), 902),
            (Left, v("1"), v("J1"), 902),
            (Left, v("2"), v("J2"), 902),
            (Left, v("3"), v("J3"), 902),
        ],
        expect: &[
            (v("0"), p("J0", "b0"), 1000),
            (v("1"), p("J1", "b1"), 1001),
            (v("2"), p("J2", "b2"), 1002),
            (v("3"), lp("J3"), 902),
        ],
    },
    Step {
        inputs: &[
            (Left, v("0"), v("K0"), 903),
            (Left, v("1"), v("K1"), 903),
            (Left, v("2"), v("K2"), 903),
            (Left, v("3"), v("K3"), 903),
        ],
        expect: &[
            (v("0"), p("K0", "b0"), 1000),
            (v("1"), p("K1", "b1"), 1001),
            (v("2"), p("K2", "b2"), 1002),
            (v("3"), p("K3", "b3"), 1003),
        ],
    },
    Step {
        inputs: &[(Left, v("0"), v("dummy"), 1203)],
        expect: &[(v("0"), lp("dummy"), 1203)],
    },
];

/// `KStreamKStreamLeftJoinTest.testGracePeriod`:
/// `ofTimeDifferenceAndGrace(ofMillis(100), ofMillis(10))`.
const LEFT_GRACE: &[Step] = &[
    Step {
        inputs: &[(Left, v("0"), v("A0"), 0), (Left, v("1"), v("A1"), 0)],
        expect: &[],
    },
    Step {
        inputs: &[
            (Right, v("0"), v("a0"), 101),
            (Right, v("1"), v("a1"), 101),
            (Right, v("2"), v("a2"), 101),
            (Right, v("3"), v("a3"), 101),
        ],
        expect: &[],
    },
    Step {
        inputs: &[(Right, v("0"), v("dummy"), 1201)],
        expect: &[(v("0"), lp("A0"), 0), (v("1"), lp("A1"), 0)],
    },
];

/// `KStreamKStreamOuterJoinTest.testGracePeriod`:
/// `ofTimeDifferenceAndGrace(ofMillis(100), ofMillis(10))`.
const OUTER_GRACE: &[Step] = &[
    Step {
        inputs: &[(Left, v("0"), v("A0"), 0), (Right, v("1"), v("11"), 0)],
        expect: &[],
    },
    Step {
        inputs: &[(Left, v("1"), v("A1"), 101), (Right, v("0"), v("10"), 101)],
        expect: &[],
    },
    Step {
        inputs: &[(Right, v("0"), v("100"), 112)],
        expect: &[(v("1"), rp("11"), 0), (v("0"), lp("A0"), 0)],
    },
];

/// `KStreamKStreamOuterJoinTest.testEmitAllNonJoinedResultsForAsymmetricWindow`:
/// `ofTimeDifferenceWithNoGrace(ofMillis(5)).after(ofMillis(20))`.
const OUTER_ASYMMETRIC: &[Step] = &[
    Step {
        inputs: &[(Left, v("0"), v("A0"), 29)],
        expect: &[],
    },
    Step {
        inputs: &[(Left, v("1"), v("A1"), 30)],
        expect: &[],
    },
    Step {
        inputs: &[(Right, v("2"), v("12"), 31)],
        expect: &[],
    },
    Step {
        inputs: &[(Right, v("3"), v("13"), 36)],
        expect: &[],
    },
    Step {
        inputs: &[(Right, v("4"), v("14"), 37)],
        expect: &[(v("2"), rp("12"), 31)],
    },
    Step {
        inputs: &[(Right, v("5"), v("15"), 50)],
        expect: &[
            (v("0"), lp("A0"), 29),
            (v("3"), rp("13"), 36),
            (v("4"), rp("14"), 37),
        ],
    },
];

/// Every scenario.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "TableTableJoinIntegrationTest.testInner",
        join: Join::TableTable,
        kind: Kind::Inner,
        steps: &TABLE_INNER,
    },
    Scenario {
        name: "TableTableJoinIntegrationTest.testLeft",
        join: Join::TableTable,
        kind: Kind::Left,
        steps: &TABLE_LEFT,
    },
    Scenario {
        name: "TableTableJoinIntegrationTest.testOuter",
        join: Join::TableTable,
        kind: Kind::Outer,
        steps: &TABLE_OUTER,
    },
    Scenario {
        name: "StreamTableJoinIntegrationTest.testInner",
        join: Join::StreamTable,
        kind: Kind::Inner,
        steps: &STREAM_TABLE_INNER,
    },
    Scenario {
        name: "StreamTableJoinIntegrationTest.testLeft",
        join: Join::StreamTable,
        kind: Kind::Left,
        steps: &STREAM_TABLE_LEFT,
    },
    Scenario {
        name: "StreamStreamJoinIntegrationTest.testInner",
        join: Join::StreamStream(TEN_SECONDS),
        kind: Kind::Inner,
        steps: &STREAM_STREAM_INNER,
    },
    Scenario {
        name: "StreamStreamJoinIntegrationTest.testLeft",
        join: Join::StreamStream(TEN_SECONDS),
        kind: Kind::Left,
        steps: &STREAM_STREAM_LEFT,
    },
    Scenario {
        name: "StreamStreamJoinIntegrationTest.testOuter",
        join: Join::StreamStream(TEN_SECONDS),
        kind: Kind::Outer,
        steps: &STREAM_STREAM_OUTER,
    },
    Scenario {
        name: "KStreamKStreamLeftJoinTest.testWindowing",
        join: Join::StreamStream(Windows {
            before: 100,
            after: 100,
            grace: 0,
            eager: false,
        }),
        kind: Kind::Left,
        steps: LEFT_WINDOWING,
    },
    Scenario {
        name: "KStreamKStreamLeftJoinTest.testGracePeriod",
        join: Join::StreamStream(Windows {
            before: 100,
            after: 100,
            grace: 10,
            eager: false,
        }),
        kind: Kind::Left,
        steps: LEFT_GRACE,
    },
    Scenario {
        name: "KStreamKStreamOuterJoinTest.testGracePeriod",
        join: Join::StreamStream(Windows {
            before: 100,
            after: 100,
            grace: 10,
            eager: false,
        }),
        kind: Kind::Outer,
        steps: OUTER_GRACE,
    },
    Scenario {
        name: "KStreamKStreamOuterJoinTest.testEmitAllNonJoinedResultsForAsymmetricWindow",
        join: Join::StreamStream(Windows {
            before: 5,
            after: 20,
            grace: 0,
            eager: false,
        }),
        kind: Kind::Outer,
        steps: OUTER_ASYMMETRIC,
    },
];
