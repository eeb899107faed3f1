//! Value joiners: the value of a joined record, from the two records a
//! join matched. In a left or outer join one side may be absent (`None`).
//!
//! The host does the join itself: it matches the records and sets the
//! joined record's key, its timestamp and its headers (the left record's,
//! then the right record's). A joiner only says what value a pair makes,
//! or rejects the pair:
//!
//! ```
//! use sluice_sdk::{Error, Record};
//!
//! /// "<order> for <customer>"; an order without a customer is for "nobody".
//! fn label(order: Option<Record<'_>>, customer: Option<Record<'_>>) -> Result<Vec<u8>, Error> {
//!     let order = order.ok_or_else(|| Error::new("no-order", "a label needs an order"))?;
//!     let customer = match &customer {
//!         Some(c) => c.value_str()?,
//!         None => "nobody",
//!     };
//!     Ok(format!("{} for {customer}", order.value_str()?).into_bytes())
//! }
//! sluice_sdk::export_joiner!(label);
//!
//! # fn main() {
//! let order = Record::new(Some("o1"), Some("2 pens"));
//! let ada = Record::new(Some("c1"), Some("Ada"));
//! let out = sluice_sdk::testing::join(label, Some(order.clone()), Some(ada.clone()));
//! assert_eq!(out.unwrap(), b"2 pens for Ada");
//! let out = sluice_sdk::testing::join(label, Some(order), None);
//! assert_eq!(out.unwrap(), b"2 pens for nobody");
//! assert_eq!(sluice_sdk::testing::join(label, None, Some(ada)).unwrap_err().code, "no-order");
//! # }
//! ```
//!
//! With JSON values, `export_joiner!(json my_fn)` takes a function of
//! typed values, `fn(Option<L>, Option<R>) -> Result<O, Error>`: each side
//! is parsed (a tombstone is `None`, like an absent side; a value that does
//! not parse rejects the pair, naming its side) and the result serialized.
//! A joiner configured from the pipeline file implements [`Joiner`] and is
//! exported with `export_joiner!(type MyJoiner)`.

use std::cell::RefCell;

#[cfg(feature = "json")]
use serde::Serialize;
#[cfg(feature = "json")]
use serde::de::DeserializeOwned;
use sluice_frame::{Reader, RecordRef, Sides, Writer};

use crate::bindings_joiner::exports::sluice::plugin::joiner::Error as WitError;
use crate::{Config, Error, Record};

/// A value joiner configured from the join step's `config` table. Export
/// it with `export_joiner!(type MyJoiner)`.
pub trait Joiner: Sized + 'static {
    /// Builds the joiner from the step's configuration. An error here
    /// fails the plugin's start, with this message.
    fn init(config: &Config) -> Result<Self, Error>;

    /// The joined value of one matched pair: the left record and the
    /// right record, either absent (`None`) in left and outer joins, never
    /// both. Returning an error rejects the pair (the pipeline's
    /// `rejected` policy applies).
    fn join(
        &mut self,
        left: Option<Record<'_>>,
        right: Option<Record<'_>>,
    ) -> Result<Vec<u8>, Error>;
}

fn bad_frame(e: sluice_frame::FrameError) -> Error {
    Error::new("bad-frame", e.to_string())
}

/// The record of a side, if present.
fn side<'a>(present: bool, record: &RecordRef<'a>) -> Result<Option<Record<'a>>, Error> {
    present.then(|| Record::from_frame(record)).transpose()
}

/// Runs a `join` call: `f` on every pair, one output status per pair.
pub(crate) fn join_batch(
    left: &[u8],
    right: &[u8],
    sides: &[u8],
    mut f: impl FnMut(Option<Record<'_>>, Option<Record<'_>>) -> Result<Vec<u8>, Error>,
) -> Result<Vec<u8>, Error> {
    let (mut lefts, count) = Reader::input(left).map_err(bad_frame)?;
    let (mut rights, right_count) = Reader::input(right).map_err(bad_frame)?;
    if right_count != count || sides.len() != count as usize {
        return Err(Error::new(
            "bad-frame",
            format!(
                "a join call has {count} left records, {right_count} right records and {} sides; \
                 they must be equal",
                sides.len()
            ),
        ));
    }
    let mut writer = Writer::output(Vec::with_capacity(left.len() + right.len()), count);
    for (pair, &byte) in sides.iter().enumerate() {
        let present = Sides::from_byte(byte, pair).map_err(bad_frame)?;
        let l = lefts.record().map_err(bad_frame)?;
        let r = rights.record().map_err(bad_frame)?;
        let result = side(present.left, &l)
            .and_then(|l| Ok((l, side(present.right, &r)?)))
            .and_then(|(l, r)| f(l, r));
        match result {
            Ok(value) => {
                writer.begin_ok();
                writer.record(None, Some(&value), None, std::iter::empty());
            }
            Err(e) => writer.rejected(&e.code, &e.message),
        }
    }
    Ok(writer.finish())
}

/// The JSON value of a side: `None` when it is absent or a tombstone.
#[cfg(feature = "json")]
fn json_side<T: DeserializeOwned>(
    record: Option<Record<'_>>,
    side: &str,
) -> Result<Option<T>, Error> {
    let Some(value) = record.and_then(|r| r.value) else {
        return Ok(None);
    };
    serde_json::from_slice(&value).map(Some).map_err(|e| {
        Error::new(
            "bad-json",
            format!("the {side} value is not the JSON this joiner expects: {e}"),
        )
    })
}

/// Calls a joiner of JSON values (`export_joiner!(json my_fn)`) on a pair
/// of records: each side parsed, the result serialized.
#[cfg(feature = "json")]
#[doc(hidden)]
pub fn join_json<L, R, O>(
    f: impl FnOnce(Option<L>, Option<R>) -> Result<O, Error>,
    left: Option<Record<'_>>,
    right: Option<Record<'_>>,
) -> Result<Vec<u8>, Error>
where
    L: DeserializeOwned,
    R: DeserializeOwned,
    O: Serialize,
{
    let left = json_side(left, "left")?;
    let right = json_side(right, "right")?;
    Ok(serde_json::to_vec(&f(left, right)?)?)
}

fn to_wit(e: Error) -> WitError {
    WitError {
        code: e.code,
        message: e.message,
    }
}

#[doc(hidden)]
pub fn guest_init<J: Joiner>(
    slot: &RefCell<Option<J>>,
    config: Vec<(String, String)>,
) -> Result<(), WitError> {
    *slot.borrow_mut() = Some(J::init(&Config(config)).map_err(to_wit)?);
    Ok(())
}

#[doc(hidden)]
pub fn guest_join<J: Joiner>(
    slot: &RefCell<Option<J>>,
    left: &[u8],
    right: &[u8],
    sides: &[u8],
) -> Result<Vec<u8>, WitError> {
    let mut slot = slot.borrow_mut();
    if slot.is_none() {
        *slot = Some(J::init(&Config::default()).map_err(to_wit)?);
    }
    let joiner = slot.as_mut().expect("initialized above");
    join_batch(left, right, sides, |l, r| joiner.join(l, r)).map_err(to_wit)
}

/// Exports a value joiner as the plugin's `sluice:plugin/joiner@0.1.0`:
///
/// - `export_joiner!(my_fn)` for a function
///   `fn(Option<Record<'_>>, Option<Record<'_>>) -> Result<Vec<u8>, Error>`;
/// - `export_joiner!(json my_fn)` for a function of JSON values
///   `fn(Option<L>, Option<R>) -> Result<O, Error>` (`L` and `R`
///   deserializable, `O` serializable; the `json` feature);
/// - `export_joiner!(type MyJoiner)` for a type that implements
///   [`Joiner`] (it gets the step's `config` table at init).
///
/// Use it once per plugin crate, instead of `export_processor!`.
#[macro_export]
macro_rules! export_joiner {
    (type $ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __SLUICE_JOINER: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            #[allow(dead_code, reason = "only exported when built for wasm32")]
            struct __SluiceExport;
            impl $crate::bindings_joiner::exports::sluice::plugin::joiner::Guest for __SluiceExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), $crate::bindings_joiner::exports::sluice::plugin::joiner::Error> {
                    __SLUICE_JOINER.with(|slot| $crate::__rt::join::guest_init(slot, config))
                }
                fn join(
                    left: ::std::vec::Vec<u8>,
                    right: ::std::vec::Vec<u8>,
                    sides: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings_joiner::exports::sluice::plugin::joiner::Error> {
                    __SLUICE_JOINER.with(|slot| $crate::__rt::join::guest_join(slot, &left, &right, &sides))
                }
            }
            #[cfg(target_arch = "wasm32")]
            $crate::bindings_joiner::export_value_joiner!(__SluiceExport with_types_in $crate::bindings_joiner);
        };
    };
    (json $func:path) => {
        $crate::__export_joiner_fn!(|left, right| $crate::__rt::join::join_json($func, left, right));
    };
    ($func:path) => {
        $crate::__export_joiner_fn!(|left, right| $func(left, right));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_joiner_fn {
    (|$left:ident, $right:ident| $call:expr) => {
        const _: () = {
            struct __SluiceJoinFn;
            impl $crate::Joiner for __SluiceJoinFn {
                fn init(_: &$crate::Config) -> ::std::result::Result<Self, $crate::Error> {
                    ::std::result::Result::Ok(__SluiceJoinFn)
                }
                fn join(
                    &mut self,
                    $left: ::std::option::Option<$crate::Record<'_>>,
                    $right: ::std::option::Option<$crate::Record<'_>>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::Error> {
                    $call
                }
            }
    $crate::export_joiner!(type __SluiceJoinFn);
        };
    };
}

#[cfg(test)]
mod tests {
    use sluice_frame::{Reader, Status, Writer};

    use super::join_batch;
    use crate::testing::run_joiner;
    use crate::{Config, Error, Joiner, Record};

    /// Joins text values as "<left>+<right>", `-` for an absent side;
    /// rejects a left value of `NO`; counts its calls.
    struct Plus {
        calls: u32,
    }

    impl Joiner for Plus {
        fn init(config: &Config) -> Result<Self, Error> {
            Ok(Plus {
                calls: config.parse_or("start", 0)?,
            })
        }
        fn join(
            &mut self,
            left: Option<Record<'_>>,
            right: Option<Record<'_>>,
        ) -> Result<Vec<u8>, Error> {
            self.calls += 1;
            let text = |r: &Option<Record<'_>>| match r {
                Some(r) => r.value_str().map(str::to_owned),
                None => Ok("-".to_owned()),
            };
            let (l, r) = (text(&left)?, text(&right)?);
            if l == "NO" {
                return Err(Error::new("no", "the left says no"));
            }
            Ok(format!("{l}+{r}#{}", self.calls).into_bytes())
        }
    }

    fn text(results: Vec<Result<Vec<u8>, Error>>) -> Vec<Result<String, String>> {
        results
            .into_iter()
            .map(|r| r.map(|v| String::from_utf8(v).unwrap()).map_err(|e| e.code))
            .collect()
    }

    #[test]
    fn each_pair_gets_its_present_sides_in_order_and_a_rejection_stays_its_own() {
        let r = |v: &str| Some(Record::new(Some("k"), Some(v)));
        let out = run_joiner::<Plus>(
            &[("start", "10")],
            vec![
                (r("a"), r("b")),
                (r("c"), None),
                (None, r("d")),
                (r("NO"), r("e")),
                (r("f"), r("g")),
            ],
        )
        .unwrap();
        assert_eq!(
            text(out),
            vec![
                Ok("a+b#11".into()),
                Ok("c+-#12".into()),
                Ok("-+d#13".into()),
                Err("no".into()),
                Ok("f+g#15".into()),
            ]
        );
    }

    #[test]
    fn a_malformed_call_is_refused_whole() {
        let frame = |n: u32| {
            let mut w = Writer::input(Vec::new(), n);
            for _ in 0..n {
                w.record(None, Some(b"v"), None, std::iter::empty());
            }
            w.finish()
        };
        let ok = |_: Option<Record<'_>>, _: Option<Record<'_>>| Ok(b"x".to_vec());
        let e = join_batch(&frame(2), &frame(1), &[3, 3], ok).unwrap_err();
        assert_eq!(e.code, "bad-frame");
        assert!(
            e.message
                .contains("2 left records, 1 right records and 2 sides"),
            "{e}"
        );
        let e = join_batch(&frame(1), &frame(1), &[0], ok).unwrap_err();
        assert!(e.message.contains("pair 0"), "{e}");
        let out = join_batch(&frame(1), &frame(1), &[1], ok).unwrap();
        let (mut reader, count) = Reader::output(&out).unwrap();
        assert_eq!(count, 1);
        assert_eq!(reader.status().unwrap(), Status::Ok(1));
        let joined = reader.record().unwrap();
        assert_eq!(
            (joined.key, joined.value, joined.timestamp),
            (None, Some(&b"x"[..]), None)
        );
        assert_eq!(joined.header_count(), 0);
    }

    #[cfg(feature = "json")]
    mod json {
        use crate::{Error, Record};

        #[derive(serde::Deserialize)]
        struct Order {
            item: String,
        }

        #[derive(serde::Deserialize)]
        struct Customer {
            name: String,
        }

        fn label(order: Option<Order>, customer: Option<Customer>) -> Result<String, Error> {
            let order = order.ok_or_else(|| Error::new("no-order", "no order"))?;
            let name = customer.map_or("nobody".to_owned(), |c| c.name);
            Ok(format!("{} for {name}", order.item))
        }

        #[test]
        fn a_json_joiner_parses_each_side_and_names_the_side_that_does_not_parse() {
            let join =
                |l: Option<Record<'_>>, r: Option<Record<'_>>| super::super::join_json(label, l, r);
            let order = || Some(Record::new(Some("o"), Some(r#"{"item":"pen"}"#)));
            let ada = || Some(Record::new(Some("c"), Some(r#"{"name":"Ada"}"#)));
            assert_eq!(join(order(), ada()).unwrap(), br#""pen for Ada""#);
            assert_eq!(join(order(), None).unwrap(), br#""pen for nobody""#);
            let tombstone = Some(Record::new(Some("c"), None::<Vec<u8>>));
            assert_eq!(join(order(), tombstone).unwrap(), br#""pen for nobody""#);
            let e = join(order(), Some(Record::new(Some("c"), Some("{oops")))).unwrap_err();
            assert_eq!(e.code, "bad-json");
            assert!(e.message.starts_with("the right value"), "{e}");
            let e = join(Some(Record::new(Some("o"), Some("[]"))), ada()).unwrap_err();
            assert!(e.message.starts_with("the left value"), "{e}");
        }
    }
}
