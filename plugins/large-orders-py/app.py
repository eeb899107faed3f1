"""Read an online shop's orders (JSON) and pass on only those over $10,000
(`min.amount`), re-keyed by customer: the Python twin of plugins/large-orders."""
from sluice_sdk import Config, Record, Reject, processor


@processor
class LargeOrders:
    def __init__(self, config: Config):
        self.min_amount = config.parse("min.amount", 10_000.0)  # bad-config fails the start

    def process(self, record: Record):
        order = record.value_json()  # malformed JSON rejects the record: bad-json
        if not isinstance(order, dict) or not isinstance(order.get("customer_id"), str):
            raise Reject("bad-json", "an order is an object with a string customer_id")
        amount = order.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise Reject("bad-json", "an order needs a numeric amount")
        if amount > self.min_amount:
            return record.with_key(order["customer_id"])
        return None  # small orders are dropped
