//! Tumbling and hopping windows (the arithmetic is in
//! `crate::window::hopping`; a tumbling window is a hopping one whose
//! advance is its size): a record updates every window that contains its
//! event time `t` and is still open, `st < end + grace`, with `st` the
//! task's stream time once the record is seen.

use crate::error::RunError;
use crate::operator::aggregate::KeyedAggregate;
use crate::operator::window::layers::{self, Emitted, WindowAdd};
use crate::operator::window::store::OpenWindow;
use crate::operator::{FastMap, StepCtx};
use crate::record::RecordRef;
use crate::topology::{EmitMode, Windowing};
use crate::window::Window;
use crate::window::hopping::Hopping;

/// Adds a batch's records to their tumbling or hopping windows; under
/// `on-update`, returns each update.
pub fn run<'r>(
    agg: &mut KeyedAggregate,
    spec: &Windowing,
    windows: Hopping,
    inputs: Vec<(usize, RecordRef<'r>)>,
    cx: &mut StepCtx<'_, '_>,
) -> Result<Vec<Emitted>, RunError> {
    let mut adds: Vec<WindowAdd<'r>> = Vec::new();
    let mut index: FastMap<(&'r [u8], Window), usize> = FastMap::default();
    for (origin, record) in inputs {
        let (t, st) = (cx.batch.times[origin], cx.batch.stream_at[origin]);
        let key = record.key.expect("null keys were filtered out");
        let mut any = false;
        let mut closed = 0;
        for w in windows.windows_for(t) {
            if !w.accepts_at(st, spec.grace) {
                closed += 1;
            } else {
                let at = *index.entry((key, w)).or_insert_with(|| {
                    adds.push(WindowAdd {
                        open: OpenWindow::timed(w, spec.grace),
                        records: Vec::new(),
                    });
                    adds.len() - 1
                });
                adds[at].records.push((origin, record));
                any = true;
            }
        }
        if !any {
            layers::late(agg, spec, (origin, record), closed, cx)?;
        } else if closed > 0 {
            cx.batch.counts.partly_late += 1;
            cx.batch.counts.late_windows += closed;
        }
    }
    layers::add_in_layers(agg, adds, spec.emit == EmitMode::OnUpdate, cx)
}
