"""{{name}}: a Sluice record processor. Upper-cases each record's value; a
record without a value is rejected (the pipeline's `rejected` policy
applies), and one whose value is the step's `drop` setting is dropped
(`config.drop = "..."` under the step in pipeline.toml).
Build: `sluice plugin build .`; test: `sluice plugin test .`"""
from sluice_sdk import Config, Record, Reject, processor


@processor
def process(record: Record, config: Config):  # config: the step's `config` table
    text = record.value_text() if record.value is not None else ""
    if not text:
        raise Reject("empty", "the record has no value")
    if text == config.get("drop"):
        return None  # returning nothing drops the record
    return record.with_value(text.upper())
