"""{{name}}: a Sluice record processor. Upper-cases each record's value; a
record without a value is rejected (the pipeline's `rejected` policy
applies). Build: `sluice plugin build .`"""
from sluice_sdk import Record, Reject, processor


@processor
def process(record: Record):
    text = record.value_text() if record.value is not None else ""
    if not text:
        raise Reject("empty", "the record has no value")
    return record.with_value(text.upper())
