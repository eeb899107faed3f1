"""Passes every record on unchanged: the boundary benchmark's Python plugin."""
from sluice_sdk import Record, processor


@processor
def identity(record: Record):
    return record
