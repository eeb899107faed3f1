//! The glue between the WIT exports and a [`Processor`].

use std::cell::RefCell;

use sluice_frame::{Reader, Writer};

use crate::bindings::exports::sluice::plugin::processor::Error as WitError;
use crate::{Config, Emitter, Error, Record};

/// A record processor that keeps state between records and is configured
/// from the step's `config` table. Export it with
/// `export_processor!(type MyProcessor)`.
pub trait Processor: Sized + 'static {
    /// Builds the processor from the step's configuration. An error here
    /// fails the plugin's start, with this message.
    fn init(config: &Config) -> Result<Self, Error>;

    /// Processes one record: emit zero or more records, or reject it.
    fn process(&mut self, record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error>;
}

/// Runs `f` over every record of an input frame and returns the output frame.
pub(crate) fn process_batch(
    batch: &[u8],
    mut f: impl FnMut(Record<'_>, &mut Emitter<'_>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let bad_frame = |e: sluice_frame::FrameError| Error::new("bad-frame", e.to_string());
    let (mut reader, count) = Reader::input(batch).map_err(bad_frame)?;
    // Outputs are usually about as large as inputs.
    let out = Vec::with_capacity(batch.len() + count as usize * 8);
    let mut writer = Writer::output(out, count);
    for _ in 0..count {
        let frame_record = reader.record().map_err(bad_frame)?;
        writer.begin_ok();
        let result = Record::from_frame(&frame_record).and_then(|record| {
            f(
                record,
                &mut Emitter {
                    writer: &mut writer,
                },
            )
        });
        if let Err(e) = result {
            writer.abandon_ok();
            writer.rejected(&e.code, &e.message);
        }
    }
    Ok(writer.finish())
}

fn to_wit(e: Error) -> WitError {
    WitError {
        code: e.code,
        message: e.message,
    }
}

#[doc(hidden)]
pub fn guest_init<P: Processor>(
    slot: &RefCell<Option<P>>,
    config: Vec<(String, String)>,
) -> Result<(), WitError> {
    let processor = P::init(&Config(config)).map_err(to_wit)?;
    *slot.borrow_mut() = Some(processor);
    Ok(())
}

#[doc(hidden)]
pub fn guest_process<P: Processor>(
    slot: &RefCell<Option<P>>,
    batch: &[u8],
) -> Result<Vec<u8>, WitError> {
    let mut slot = slot.borrow_mut();
    if slot.is_none() {
        *slot = Some(P::init(&Config::default()).map_err(to_wit)?);
    }
    let processor = slot.as_mut().expect("initialized above");
    process_batch(batch, |record, out| processor.process(record, out)).map_err(to_wit)
}
