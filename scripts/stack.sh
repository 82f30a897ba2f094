#!/usr/bin/env bash
# Local Flywheel stack: one Apache Kafka broker (KRaft, jars from Maven Central) and one
# redis-server, both on 127.0.0.1, tracked by pid files under the state folder.
#   stack.sh up       start what is not running (harmless when all is up), wait until ready
#   stack.sh down     stop exactly the processes this script started
#   stack.sh status   what runs, on which port, with which pid
#   stack.sh reset    down, then delete the broker's and Redis's data
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${FLYWHEEL_STACK_DIR:-$ROOT/.stack}
CACHE=${FLYWHEEL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flywheel}
KAFKA_VERSION=${FLYWHEEL_KAFKA_VERSION:-4.4.0}
KAFKA_PORT=${FLYWHEEL_KAFKA_PORT:-19092}
CONTROLLER_PORT=${FLYWHEEL_KAFKA_CONTROLLER_PORT:-19093}
REDIS_PORT=${FLYWHEEL_REDIS_PORT:-16379}
KAFKA_HEAP=${FLYWHEEL_KAFKA_HEAP:-512m}
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
KAFKA_DIR="$STATE/kafka"
REDIS_DIR="$STATE/redis"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# --- prerequisites ---------------------------------------------------------------------------
apt_install() {
  if [ "${CI:-}" = "true" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    log "installing $* with apt-get (CI)"
    if [ ! -f "$STATE/.apt-updated" ]; then apt-get update -qq && mkdir -p "$STATE" && touch "$STATE/.apt-updated"; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    return 0
  fi
  return 1
}

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }

require_tools() {
  local missing=()
  command -v java >/dev/null || missing+=("java (Java 17+: apt-get install openjdk-17-jre-headless)")
  command -v mvn >/dev/null || missing+=("mvn (Maven: apt-get install maven)")
  command -v redis-server >/dev/null || missing+=("redis-server (apt-get install redis-server)")
  command -v redis-cli >/dev/null || missing+=("redis-cli (apt-get install redis-tools)")
  if [ ${#missing[@]} -gt 0 ]; then
    local pkgs=()
    command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null || pkgs+=(maven)
    command -v redis-server >/dev/null || pkgs+=(redis-server)
    command -v redis-cli >/dev/null || pkgs+=(redis-tools)
    if apt_install "${pkgs[@]}"; then return 0; fi
    die "missing: ${missing[*]}. Install them (as root: apt-get install ${pkgs[*]}) and run again."
  fi
  local major; major=$(java_major)
  [ -n "$major" ] && [ "$major" -ge 17 ] || die "java $major found; Kafka $KAFKA_VERSION needs Java 17 or newer (apt-get install openjdk-17-jre-headless)"
}

# Resolve the broker's runtime classpath once; later runs reuse the cache folder.
fetch_kafka() {
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  log "fetching Kafka $KAFKA_VERSION and its runtime dependencies from Maven Central into $LIBS"
  rm -rf "$LIBS" && mkdir -p "$LIBS" "$CACHE"
  mvn -q -B -f "$ROOT/stack/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$CACHE/mvn-kafka-$KAFKA_VERSION.log" 2>&1 \
    || die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable?); see $CACHE/mvn-kafka-$KAFKA_VERSION.log"
  ls "$LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
  touch "$LIBS/.complete"
}

# --- process bookkeeping ---------------------------------------------------------------------
# A pid file counts only if that pid is alive and its command line is still ours (pids get reused).
alive() {
  local pidfile=$1 marker=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$marker"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local what=$1 seconds=$2 check=$3 i
  for ((i = 0; i < seconds * 4; i++)); do
    if eval "$check"; then return 0; fi
    sleep 0.25
  done
  return 1
}

# --- Kafka -----------------------------------------------------------------------------------
kafka_marker() { echo "flywheel.stack=$KAFKA_DIR"; }

write_kafka_config() {
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  cat >"$KAFKA_DIR/server.properties" <<PROPS
# Written by scripts/stack.sh: a single combined broker+controller for local use.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=6
auto.create.topics.enable=false
# One broker: internal topics can only have one replica, else groups and transactions never start.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=67108864
PROPS
}

kafka_up() {
  if alive "$KAFKA_DIR/kafka.pid" "$(kafka_marker)"; then
    log "kafka already running (pid $(cat "$KAFKA_DIR/kafka.pid"), 127.0.0.1:$KAFKA_PORT)"
    return 0
  fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process this stack did not start; stop it or set FLYWHEEL_KAFKA_PORT"
  fetch_kafka
  write_kafka_config
  local cp="$LIBS/*"
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    log "formatting KRaft storage (cluster $cluster_id)"
    java -cp "$cp" -Dlog4j2.configurationFile="$ROOT/stack/kafka/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR/logs" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/format.log" 2>&1 \
      || die "kafka storage format failed; see $KAFKA_DIR/logs/format.log"
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (heap $KAFKA_HEAP)"
  nohup java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -D"$(kafka_marker)" \
    -Dlog4j2.configurationFile="$ROOT/stack/kafka/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR/logs" \
    -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/stdout.log" 2>&1 &
  echo $! >"$KAFKA_DIR/kafka.pid"
  if ! wait_for kafka 90 "port_open $KAFKA_PORT || ! alive '$KAFKA_DIR/kafka.pid' '$(kafka_marker)'"; then
    die "kafka did not open port $KAFKA_PORT within 90 s; see $KAFKA_DIR/logs/server.log"
  fi
  alive "$KAFKA_DIR/kafka.pid" "$(kafka_marker)" || die "kafka exited during start; see $KAFKA_DIR/logs/server.log and stdout.log"
}

# --- Redis -----------------------------------------------------------------------------------
redis_marker() { echo "127.0.0.1:$REDIS_PORT"; }

redis_up() {
  if alive "$REDIS_DIR/redis.pid" "$(redis_marker)"; then
    log "redis already running (pid $(cat "$REDIS_DIR/redis.pid"), 127.0.0.1:$REDIS_PORT)"
    return 0
  fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by a process this stack did not start; stop it or set FLYWHEEL_REDIS_PORT"
  mkdir -p "$REDIS_DIR"
  log "starting redis-server on 127.0.0.1:$REDIS_PORT (append-only file on)"
  nohup redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
    --appendonly yes --appendfsync everysec --save '' --daemonize no \
    --logfile "$REDIS_DIR/redis.log" >/dev/null 2>&1 &
  echo $! >"$REDIS_DIR/redis.pid"
  wait_for redis 20 "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping 2>/dev/null | grep -q PONG" \
    || die "redis did not answer PING within 20 s; see $REDIS_DIR/redis.log"
}

# --- commands --------------------------------------------------------------------------------
stop_one() {
  local name=$1 pidfile=$2 marker=$3 pid i
  if ! alive "$pidfile" "$marker"; then
    rm -f "$pidfile"
    log "$name not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop within 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

status() {
  local rc=0
  if alive "$KAFKA_DIR/kafka.pid" "$(kafka_marker)"; then
    echo "kafka   running  pid $(cat "$KAFKA_DIR/kafka.pid")  127.0.0.1:$KAFKA_PORT  (Kafka $KAFKA_VERSION, KRaft)"
  else
    echo "kafka   stopped"; rc=1
  fi
  if alive "$REDIS_DIR/redis.pid" "$(redis_marker)"; then
    echo "redis   running  pid $(cat "$REDIS_DIR/redis.pid")  127.0.0.1:$REDIS_PORT"
  else
    echo "redis   stopped"; rc=1
  fi
  return $rc
}

env_hint() {
  echo "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

case "${1:-}" in
  up)
    require_tools
    mkdir -p "$STATE"
    redis_up
    kafka_up
    log "stack is up"
    ;;
  down)
    stop_one kafka "$KAFKA_DIR/kafka.pid" "$(kafka_marker)"
    stop_one redis "$REDIS_DIR/redis.pid" "$(redis_marker)"
    ;;
  status) status ;;
  env) env_hint ;;
  reset)
    "$0" down
    rm -rf "$KAFKA_DIR" "$REDIS_DIR"
    log "state removed from $STATE"
    ;;
  *)
    echo "usage: $0 up|down|status|env|reset" >&2
    exit 2
    ;;
esac
