#!/usr/bin/env bash
# Run a throw-away Apache Kafka broker (KRaft, one combined broker+controller
# node) on 127.0.0.1, from jars that Maven fetches (tests/kafka/pom.xml).
#
# Usage:
#   scripts/kafka.sh fetch                     copy the jars into $SLUICE_KAFKA_HOME/libs (no-op when up to date)
#   scripts/kafka.sh start  [--port N]         start a fresh broker (default port 19092, controller N+1);
#                                              the last line on stdout is the bootstrap address 127.0.0.1:N
#   scripts/kafka.sh stop   [--port N]         stop it (SIGTERM, SIGKILL after 30 s) and delete its data
#   scripts/kafka.sh down   [--port N] [--kill] stop its process but keep its data and config, for `up`
#                                              (SIGTERM and SIGKILL after 30 s, as stop; --kill: SIGKILL at
#                                              once, a crash)
#   scripts/kafka.sh up     [--port N]         start again, on what `down` kept (same cluster, topics,
#                                              committed offsets and transactions); prints the address as start
#   scripts/kafka.sh status [--port N]         exit 0 and print the address if running, else exit 1
#   scripts/kafka.sh run CLASS [ARGS...]       run a Java main class on the same classpath (CLI tools), e.g.
#        scripts/kafka.sh run org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:19092 --list
#   scripts/kafka.sh classpath                 print the classpath ('DIR/*')
#
# Environment:
#   SLUICE_KAFKA_HOME         where libs/ and run-<port>/ live (default ~/.cache/sluice/kafka)
#   SLUICE_KAFKA_HEAP         broker heap options (default "-Xms256m -Xmx1g")
#   SLUICE_KAFKA_EXTRA_PROPS  extra server.properties lines (newline separated), appended last
#   SLUICE_KAFKA_START_TIMEOUT seconds to wait for the broker to accept requests (default 90)
#   JAVA_HOME                 Java 17+ (default: java on PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/../tests/kafka/pom.xml"
KHOME="${SLUICE_KAFKA_HOME:-$HOME/.cache/sluice/kafka}"
LIBS="$KHOME/libs"
MARKER="$LIBS/.fetched"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
HEAP="${SLUICE_KAFKA_HEAP:--Xms256m -Xmx1g}"
START_TIMEOUT="${SLUICE_KAFKA_START_TIMEOUT:-90}"
PORT=19092

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

KILL=""
parse_port() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) [ $# -ge 2 ] || die "--port needs a value"; PORT="$2"; shift 2 ;;
      --port=*) PORT="${1#--port=}"; shift ;;
      --kill) [ -n "${ALLOW_KILL:-}" ] || die "unknown argument: $1"; KILL=1; shift ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65534 ] \
    || die "bad port: $PORT"
  CPORT=$((PORT + 1))
  RUN="$KHOME/run-$PORT"
  PIDFILE="$RUN/kafka.pid"
}

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

# ---------------------------------------------------------------- fetch
fetched() { [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$(pom_sum)" ]; }

cmd_fetch() {
  [ -f "$POM" ] || die "missing $POM"
  fetched && return 0
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  mkdir -p "$KHOME"
  exec 8>"$KHOME/.fetch.lock"
  flock 8
  fetched && { exec 8>&-; return 0; }   # another process fetched meanwhile
  local tmp="$KHOME/libs.tmp.$$"
  rm -rf "$tmp"
  log "fetching Kafka jars with Maven into $LIBS ..."
  if ! mvn -B -q -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KHOME/fetch.log" 2>&1; then
    tail -n 40 "$KHOME/fetch.log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (full log: $KHOME/fetch.log)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "no kafka_2.13 jar was copied"; }
  pom_sum >"$tmp/.fetched"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  exec 8>&-
  log "fetched $(ls "$LIBS"/*.jar | wc -l) jars"
}

# ---------------------------------------------------------------- helpers
# Log4j2 config for CLI tools: warnings and errors to stderr only.
tools_log4j() {
  local f="$KHOME/tools-log4j2.properties"
  if [ ! -f "$f" ]; then
    cat >"$f.tmp.$$" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
    mv "$f.tmp.$$" "$f"
  fi
  echo "$f"
}

run_java() {  # run_java CLASS ARGS...  (CLI tools, foreground)
  exec "$JAVA" -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$(tools_log4j)" -cp "$LIBS/*" "$@"
}

pid_alive() {  # pid_alive PID: our broker process is alive
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

running_pid() {  # prints the pid if the broker for $PORT is running
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  pid_alive "$pid" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22 chars),
# not starting with '-' (Kafka's own random-uuid avoids that too).
random_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [ "${id:0:1}" != "-" ] && [ "${#id}" -eq 22 ] && { echo "$id"; return; }
  done
}

write_config() {
  mkdir -p "$RUN/data" "$RUN/logs"
  cat >"$RUN/server.properties" <<EOF
# Generated by scripts/kafka.sh: single-node KRaft (broker+controller) for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/data

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

# Internal topics: one replica (single node), few partitions (fast first use).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

# Log cleaner (compaction) on, with a buffer that fits a small heap and a
# short back-off so compacted topics get cleaned quickly in tests.
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
log.cleaner.backoff.ms=1000
log.retention.check.interval.ms=30000

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  if [ -n "${SLUICE_KAFKA_EXTRA_PROPS:-}" ]; then
    printf '\n# SLUICE_KAFKA_EXTRA_PROPS\n%s\n' "$SLUICE_KAFKA_EXTRA_PROPS" >>"$RUN/server.properties"
  fi
  cat >"$RUN/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $RUN/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.controller.name = kafka.controller
logger.controller.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

fail_start() {
  local msg="$1"
  {
    echo "kafka.sh: $msg"
    echo "---- errors in $RUN/logs/server.log ----"
    grep -E '^\[[^]]*\] (ERROR|FATAL)' "$RUN/logs/server.log" 2>/dev/null | tail -n 20 || true
    echo "---- tail of $RUN/logs/server.log ----"
    tail -n 40 "$RUN/logs/server.log" 2>/dev/null || true
    echo "---- tail of $RUN/logs/stdout.log ----"
    tail -n 30 "$RUN/logs/stdout.log" 2>/dev/null || true
  } >&2
  exit 1
}

# ---------------------------------------------------------------- start
# Fetches the jars and takes the port's lock (held until the script
# exits); fails, printing the address, when the broker already runs.
locked_unless_running() {
  cmd_fetch
  mkdir -p "$KHOME"
  exec 9>"$KHOME/.lock-$PORT"
  flock 9
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    echo "127.0.0.1:$PORT"
    return 1
  fi
}

cmd_start() {
  parse_port "$@"
  locked_unless_running || return 0
  for p in "$PORT" "$CPORT"; do
    port_open "$p" && die "port $p on 127.0.0.1 is already in use by another process"
  done
  rm -rf "$RUN"
  write_config

  local cid t0
  t0=$SECONDS
  cid="$(random_cluster_id)"
  if ! "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j2.configurationFile="$(tools_log4j)" -cp "$LIBS/*" \
        kafka.tools.StorageTool format -t "$cid" -c "$RUN/server.properties" \
        >"$RUN/logs/format.log" 2>&1; then
    cat "$RUN/logs/format.log" >&2
    die "formatting KRaft storage failed"
  fi

  launch "$t0"
}

# Starts the broker on $RUN's config and data, and waits until it is ready;
# prints its address. Called with the lock held.
launch() {
  local t0="$1" pid
  # Readiness is read from what the server logs from now on: a restarted
  # broker (`up`) appends to the log of its earlier run.
  local seen=0
  [ -f "$RUN/logs/server.log" ] && seen="$(stat -c %s "$RUN/logs/server.log")"
  # setsid: own session, so the broker outlives this script and the caller's
  # terminal signals. In a non-interactive shell the background child is not
  # a group leader, so setsid execs java in place and $! is java's pid.
  # shellcheck disable=SC2086
  setsid "$JAVA" $HEAP -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Dkafka.logs.dir="$RUN/logs" \
    -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" \
    </dev/null >>"$RUN/logs/stdout.log" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"

  # Ready = the server logged "Kafka Server started" (a KRaft broker logs it
  # only after it is unfenced) and the listener accepts TCP connections.
  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      fail_start "broker exited during startup"
    fi
    if tail -c "+$((seen + 1))" "$RUN/logs/server.log" 2>/dev/null | grep -q 'Kafka Server started' \
        && port_open "$PORT"; then
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PIDFILE"
      fail_start "broker not ready after ${START_TIMEOUT}s (killed)"
    fi
    sleep 0.2
  done
  log "started pid $pid in $((SECONDS - t0))s, data in $RUN"
  echo "127.0.0.1:$PORT"
}

# ---------------------------------------------------------------- stop
# Ends the broker's process if it runs: SIGTERM, SIGKILL after 30 s ($KILL:
# SIGKILL at once). Called with the lock held.
end_broker() {
  local pid
  if pid="$(running_pid)"; then
    if [ -n "$KILL" ]; then
      kill -KILL "$pid" 2>/dev/null || true
    else
      kill -TERM "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 30))
      while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still alive after 30s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    log "stopped pid $pid${KILL:+ (SIGKILL)}"
  else
    log "not running on port $PORT"
  fi
}

cmd_stop() {
  parse_port "$@"
  mkdir -p "$KHOME"
  exec 9>"$KHOME/.lock-$PORT"
  flock 9
  end_broker
  rm -rf "$RUN"
}

# ---------------------------------------------------------------- down, up
cmd_down() {
  ALLOW_KILL=1 parse_port "$@"
  mkdir -p "$KHOME"
  exec 9>"$KHOME/.lock-$PORT"
  flock 9
  [ -f "$RUN/server.properties" ] || die "no broker data for port $PORT (start one first)"
  end_broker
  rm -f "$PIDFILE"
  log "data kept in $RUN (scripts/kafka.sh up --port $PORT starts it again)"
}

cmd_up() {
  parse_port "$@"
  locked_unless_running || return 0
  [ -f "$RUN/server.properties" ] && [ -f "$RUN/data/meta.properties" ] \
    || die "no kept broker data for port $PORT in $RUN (scripts/kafka.sh start makes a fresh one)"
  for p in "$PORT" "$CPORT"; do
    port_open "$p" && die "port $p on 127.0.0.1 is already in use by another process"
  done
  launch "$SECONDS"
}

# ---------------------------------------------------------------- status
cmd_status() {
  parse_port "$@"
  local pid
  if pid="$(running_pid)"; then
    echo "running pid $pid 127.0.0.1:$PORT"
  else
    echo "not running (port $PORT)"
    return 1
  fi
}

# ---------------------------------------------------------------- main
[ $# -ge 1 ] || usage
sub="$1"; shift
case "$sub" in
  fetch) [ $# -eq 0 ] || die "fetch takes no arguments"; cmd_fetch ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  down) cmd_down "$@" ;;
  up) cmd_up "$@" ;;
  status) cmd_status "$@" ;;
  run) [ $# -ge 1 ] || die "run needs a class name"; cmd_fetch; run_java "$@" ;;
  classpath) cmd_fetch; echo "$LIBS/*" ;;
  -h|--help|help) usage ;;
  *) die "unknown subcommand: $sub (try --help)" ;;
esac
