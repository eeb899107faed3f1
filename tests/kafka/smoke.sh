#!/usr/bin/env bash
# End-to-end check of scripts/kafka.sh against a real broker: start, create a
# topic, produce and consume with the Kafka console tools, stop.
# Usage: tests/kafka/smoke.sh [PORT]   (default 19192, so a broker on 19092 is left alone)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
K="$ROOT/scripts/kafka.sh"
PORT="${1:-19192}"

"$K" fetch
trap '"$K" stop --port "$PORT" || true' EXIT
B="$("$K" start --port "$PORT" | tail -n 1)"
[ "$B" = "127.0.0.1:$PORT" ] || { echo "unexpected bootstrap address: $B" >&2; exit 1; }

"$K" run org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" \
  --create --topic smoke --partitions 2 --replication-factor 1
printf 'k1:one\nk2:two\nk3:three\n' | "$K" run org.apache.kafka.tools.ConsoleProducer \
  --bootstrap-server "$B" --topic smoke --property parse.key=true --property key.separator=:
got="$("$K" run org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$B" \
  --topic smoke --from-beginning --max-messages 3 --timeout-ms 30000 \
  --property print.key=true --property key.separator=: 2>/dev/null | sort)"
want="$(printf 'k1:one\nk2:two\nk3:three')"
if [ "$got" = "$want" ]; then
  echo "1 passed, 0 failed"
else
  printf 'expected:\n%s\ngot:\n%s\n' "$want" "$got" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
