//! The error policies: what happens to a record a node rejected, trapped
//! on, was too late for, or whose output a sink would refuse.
//!
//! Each kind has its policy in `[errors]` (`rejected`, `trap`, `refused`;
//! a late record is only dead-lettered under the step's `late = "dlq"`, a
//! record without a key before a repartition only under `refused = "dlq"`):
//! `skip` drops the record (logged at debug), `dlq` sends it to the
//! dead-letter topic with why and where from (`dead_letter`), `fail`
//! stops the run naming the record. A dead letter the dead-letter topic
//! would itself refuse is cut down to fit (`dead_letter::fit`), and fails
//! the run only if it still does not.

use crate::error::RunError;
use crate::operator::batch::BatchContext;
use crate::operator::dead_letter::{self, Failure, Kind, Origin};
use crate::record::RecordRef;
use crate::topology::{ErrorPolicy, NodeId, Topology};

/// What a node refused, and why.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    /// The step, or the table source, that refused the record.
    pub node: NodeId,
    /// Its plugin's digest (`built-in` without one).
    pub digest: &'a str,
    /// Rejected, trapped on, late, or refused by a sink.
    pub kind: Kind,
    /// The reason's code.
    pub code: &'a str,
    /// The reason.
    pub message: &'a str,
}

/// Applies the error policy of `why.kind` to `record`, the batch's record
/// `origin` or what a node made of it.
pub fn apply(
    topology: &Topology,
    ctx: &mut BatchContext<'_>,
    why: Refused<'_>,
    (origin, record): (usize, RecordRef<'_>),
) -> Result<(), RunError> {
    let Refused {
        node,
        digest,
        kind,
        code,
        message,
    } = why;
    let source = &ctx.batch[origin];
    match kind {
        Kind::Rejected => ctx.counts.rejected += 1,
        Kind::Trap => ctx.counts.trapped += 1,
        Kind::Refused => ctx.counts.refused += 1,
        Kind::Unkeyed => ctx.counts.unkeyed += 1,
        Kind::Late => {}
    }
    let t = topology;
    let (policy, policy_name) = match kind {
        Kind::Rejected => (t.errors.rejected, "rejected"),
        Kind::Trap => (t.errors.trap, "trap"),
        Kind::Refused => (t.errors.refused, "refused"),
        // Only dead-lettered when the step's `late` policy is `dlq`.
        Kind::Late => (ErrorPolicy::Dlq, "late"),
        // Dropped, as Kafka Streams drops them, unless dead letters are
        // asked for: a record without a key is not a failure of the run.
        Kind::Unkeyed => match t.errors.refused {
            ErrorPolicy::Dlq => (ErrorPolicy::Dlq, "refused"),
            _ => (ErrorPolicy::Skip, "unkeyed"),
        },
    };
    let step_name = t.node_name(node);
    match policy {
        ErrorPolicy::Skip => {
            tracing::debug!(step = %step_name, topic = %source.topic, partition = source.partition, offset = source.offset, "{policy_name}: {code}: {message}; skipped");
            Ok(())
        }
        ErrorPolicy::Dlq => {
            let mut letter = dead_letter::letter(
                record,
                &Failure {
                    kind,
                    code,
                    message,
                    step: step_name,
                    digest,
                },
                &Origin {
                    topic: &source.topic,
                    partition: source.partition,
                    offset: source.offset,
                },
            );
            let dlq = &t.errors.dlq_topic;
            if let Some(refusal) = ctx.out.refusal(dlq, letter.as_ref()) {
                dead_letter::fit(&mut letter, &refusal);
                if let Some(again) = ctx.out.refusal(dlq, letter.as_ref()) {
                    return Err(RunError::RecordFailed {
                        step: step_name.to_owned(),
                        outcome: "could not dead-letter",
                        policy: policy_name,
                        topic: source.topic.to_string(),
                        partition: source.partition,
                        offset: source.offset,
                        reason: format!("{code}: {message}; and the dead letter: {again}"),
                    });
                }
            }
            ctx.out.send(dlq, letter.as_ref())?;
            ctx.counts.dead_letters += 1;
            Ok(())
        }
        ErrorPolicy::Fail => Err(RunError::RecordFailed {
            step: step_name.to_owned(),
            outcome: match kind {
                Kind::Rejected => "rejected",
                Kind::Trap => "trapped on",
                Kind::Refused => "made an output its sink would refuse from",
                Kind::Late => "was too late for",
                Kind::Unkeyed => "had no key to repartition by at",
            },
            policy: policy_name,
            topic: source.topic.to_string(),
            partition: source.partition,
            offset: source.offset,
            reason: format!("{code}: {message}"),
        }),
    }
}
