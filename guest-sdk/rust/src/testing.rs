//! Run processors, aggregators, extractors and joiners on the host target,
//! in unit tests.
//!
//! Records go through the same frame encoding that the host uses, so a test
//! sees exactly what the plugin will emit inside Sluice.

use sluice_frame::{Reader, Status, Writer};

use crate::{Config, Emitter, Error, Processor, Record};

/// Runs a processor function on one record; returns its outputs or the
/// rejection.
pub fn run<F>(f: F, record: Record<'_>) -> Result<Vec<Record<'static>>, Error>
where
    F: FnMut(Record<'_>, &mut Emitter<'_>) -> Result<(), Error>,
{
    run_batch(f, vec![record])
        .pop()
        .expect("one status per record")
}

/// Builds a [`Processor`] from `config` and runs it over `records`, in
/// order; returns one result per record.
pub fn run_processor<P: Processor>(
    config: &[(&str, &str)],
    records: Vec<Record<'_>>,
) -> Result<Vec<Result<Vec<Record<'static>>, Error>>, Error> {
    let config = Config(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut p = P::init(&config)?;
    Ok(run_batch(|r, out| p.process(r, out), records))
}

/// Runs a processor function over a call batch; one result per record.
pub fn run_batch<F>(f: F, records: Vec<Record<'_>>) -> Vec<Result<Vec<Record<'static>>, Error>>
where
    F: FnMut(Record<'_>, &mut Emitter<'_>) -> Result<(), Error>,
{
    let mut w = Writer::input(Vec::new(), records.len() as u32);
    for r in &records {
        r.write(&mut w);
    }
    let input = w.finish();
    let output = crate::runtime::process_batch(&input, f).expect("frame written by the SDK");
    decode_output(&output).expect("frame written by the SDK")
}

/// Builds an [`Aggregator`](crate::Aggregator) from `config` and adds
/// `records` (keys starting with no aggregate) in one call, through the
/// same frames the host uses; returns, per record, the key's aggregate
/// after it, or the rejection.
#[cfg(feature = "json")]
pub fn run_aggregator<A: crate::Aggregator>(
    config: &[(&str, &str)],
    records: Vec<Record<'_>>,
) -> Result<Vec<Result<A::Aggregate, Error>>, Error> {
    let config = Config(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut aggregator = A::init(&config)?;
    let mut w = Writer::input(Vec::new(), records.len() as u32);
    for r in &records {
        r.write(&mut w);
    }
    let batch = w.finish();
    let none = Writer::input(Vec::new(), 0).finish();
    let output = crate::aggregate::add_batch(&mut aggregator, &none, &batch)?;
    let results = decode_output(&output).map_err(|e| Error::new("bad-frame", e.to_string()))?;
    results
        .into_iter()
        .map(|r| match r {
            Ok(records) => {
                let [one] = <[Record<'static>; 1]>::try_from(records)
                    .map_err(|_| Error::new("bad-frame", "an ok status holds one aggregate"))?;
                Ok(one.json::<A::Aggregate>())
            }
            Err(e) => Ok(Err(e)),
        })
        .collect()
}

/// Builds a [`TimestampExtractor`](crate::TimestampExtractor) from
/// `config` and runs it over `records` through the frame encoding; returns
/// each record's event time, or `None`.
pub fn run_extractor<E: crate::TimestampExtractor>(
    config: &[(&str, &str)],
    records: Vec<Record<'_>>,
) -> Result<Vec<Option<i64>>, Error> {
    let config = Config(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut extractor = E::init(&config)?;
    let mut w = Writer::input(Vec::new(), records.len() as u32);
    for r in &records {
        r.write(&mut w);
    }
    let times = crate::extract::extract_batch(&mut extractor, &w.finish())?;
    Ok(times.into_iter().map(|t| (t >= 0).then_some(t)).collect())
}

/// One matched pair of a join: the left record and the right record,
/// either absent (never both).
pub type Pair<'a> = (Option<Record<'a>>, Option<Record<'a>>);

/// Runs a joiner function on one pair, through the frames the host uses;
/// returns the joined value or the rejection.
pub fn join<F>(f: F, left: Option<Record<'_>>, right: Option<Record<'_>>) -> Result<Vec<u8>, Error>
where
    F: FnMut(Option<Record<'_>>, Option<Record<'_>>) -> Result<Vec<u8>, Error>,
{
    join_batch(f, vec![(left, right)])
        .pop()
        .expect("one status per pair")
}

/// Builds a [`Joiner`](crate::Joiner) from `config` and joins `pairs` in
/// one call, in order; returns, per pair, the joined value or the
/// rejection.
pub fn run_joiner<J: crate::Joiner>(
    config: &[(&str, &str)],
    pairs: Vec<Pair<'_>>,
) -> Result<Vec<Result<Vec<u8>, Error>>, Error> {
    let config = Config(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut joiner = J::init(&config)?;
    Ok(join_batch(|l, r| joiner.join(l, r), pairs))
}

/// Runs a joiner function over a call batch of pairs; one result per pair.
///
/// # Panics
/// If a pair has neither side.
pub fn join_batch<F>(f: F, pairs: Vec<Pair<'_>>) -> Vec<Result<Vec<u8>, Error>>
where
    F: FnMut(Option<Record<'_>>, Option<Record<'_>>) -> Result<Vec<u8>, Error>,
{
    let count = pairs.len() as u32;
    let (mut left, mut right) = (
        Writer::input(Vec::new(), count),
        Writer::input(Vec::new(), count),
    );
    let mut sides = Vec::with_capacity(pairs.len());
    for (l, r) in &pairs {
        assert!(l.is_some() || r.is_some(), "a pair has at least one side");
        for (writer, record) in [(&mut left, l), (&mut right, r)] {
            match record {
                Some(record) => record.write(writer),
                None => writer.record(None, None, None, std::iter::empty()),
            }
        }
        let present = sluice_frame::Sides {
            left: l.is_some(),
            right: r.is_some(),
        };
        sides.push(present.to_byte());
    }
    let (left, right) = (left.finish(), right.finish());
    let output =
        crate::join::join_batch(&left, &right, &sides, f).expect("frames written by the SDK");
    decode_output(&output)
        .expect("frame written by the SDK")
        .into_iter()
        .map(|r| {
            r.map(|mut records| {
                let joined = records.pop().expect("an ok status holds the joined value");
                joined.value.map(|v| v.into_owned()).unwrap_or_default()
            })
        })
        .collect()
}

/// Empties the in-memory stores that [`crate::state`] uses in native
/// tests (they are per thread, and outlive one `run`).
pub fn clear_state() {
    #[cfg(not(target_arch = "wasm32"))]
    crate::state::imp::STORES.with(|s| s.borrow_mut().clear());
}

/// Runs a [`Reducer`](crate::Reducer) over `records` (keys starting with
/// no value) in one call; returns, per record, the key's value after it, or
/// the rejection.
pub fn run_reducer<R: crate::Reducer>(
    config: &[(&str, &str)],
    records: Vec<Record<'_>>,
) -> Result<Vec<Result<Vec<u8>, Error>>, Error> {
    use crate::aggregate::Fold;
    let config = Config(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut fold = crate::aggregate::ReducerFold::<R>::init(&config)?;
    let mut w = Writer::input(Vec::new(), records.len() as u32);
    for r in &records {
        r.write(&mut w);
    }
    let batch = w.finish();
    let none = Writer::input(Vec::new(), 0).finish();
    let output = fold.add_batch(&none, &batch)?;
    let results = decode_output(&output).map_err(|e| Error::new("bad-frame", e.to_string()))?;
    Ok(results
        .into_iter()
        .map(|r| {
            r.map(|mut records| {
                records
                    .pop()
                    .and_then(|r| r.value.map(|v| v.into_owned()))
                    .unwrap_or_default()
            })
        })
        .collect())
}

fn decode_output(
    frame: &[u8],
) -> Result<Vec<Result<Vec<Record<'static>>, Error>>, sluice_frame::FrameError> {
    let (mut reader, count) = Reader::output(frame)?;
    let mut results = Vec::with_capacity(count as usize);
    for _ in 0..count {
        results.push(match reader.status()? {
            Status::Ok(n) => {
                let mut records = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let r = reader.record()?;
                    let record = Record::from_frame(&r).expect("headers validated by reader");
                    records.push(record.into_owned());
                }
                Ok(records)
            }
            Status::Rejected { code, message } => Err(Error::new(code, message)),
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_words(r: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let text = r.value_str()?.to_owned();
        if text.is_empty() {
            return Err(Error::new("empty", "nothing to split"));
        }
        for w in text.split(' ') {
            out.emit(r.clone().with_value(w));
        }
        Ok(())
    }

    #[test]
    fn flat_map_reject_and_pass_through_keep_one_status_per_record() {
        let results = run_batch(
            split_words,
            vec![
                Record::new(Some("a"), Some("x y")).with_timestamp(5),
                Record::new(Some("b"), Some("")),
                Record::new(Some("c"), Some("z")).with_header("h", "v"),
            ],
        );
        assert_eq!(results.len(), 3);
        let first = results[0].as_ref().unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[1].value.as_deref(), Some(&b"y"[..]));
        assert_eq!(first[1].timestamp, Some(5));
        assert_eq!(results[1].as_ref().unwrap_err().code, "empty");
        let third = results[2].as_ref().unwrap();
        assert_eq!(third[0].header("h"), Some(&b"v"[..]));
    }

    struct Counter {
        step: u64,
        seen: u64,
    }

    impl Processor for Counter {
        fn init(config: &Config) -> Result<Self, Error> {
            Ok(Counter {
                step: config.parse_or("step", 1)?,
                seen: 0,
            })
        }
        fn process(&mut self, r: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
            self.seen += self.step;
            out.emit(r.with_value(self.seen.to_string()));
            Ok(())
        }
    }

    #[test]
    fn stateful_processor_keeps_state_across_records() {
        let recs = vec![
            Record::new(Some("k"), Some("")),
            Record::new(Some("k"), Some("")),
        ];
        let out = run_processor::<Counter>(&[("step", "10")], recs).unwrap();
        assert_eq!(
            out[1].as_ref().unwrap()[0].value.as_deref(),
            Some(&b"20"[..])
        );
        assert!(run_processor::<Counter>(&[("step", "x")], vec![]).is_err());
    }
}
