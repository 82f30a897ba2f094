#!/usr/bin/env bash
# The main job on the local stack: build, start Kafka + Redis, create the topics, and run the
# simulated shop (clicks, purchases, a mid-run drift, 1% malformed events) into Kafka; then show
# what landed where. Services that consume the stream join this script as they land.
# Settings: DEMO_RATE (events/s, default 300), DEMO_DURATION (seconds, default 60), DEMO_SEED.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RATE=${DEMO_RATE:-300}
DURATION=${DEMO_DURATION:-60}
SEED=${DEMO_SEED:-$RANDOM}

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run -s build
node bin/flywheel.js stack up

echo "== simulated shop: $RATE events/s for $DURATION s (seed $SEED), electronics converts better from the midpoint"
node bin/flywheel.js simulate --rate "$RATE" --duration "$DURATION" --seed "$SEED" --malformed 0.01 \
  --drift-at $((DURATION / 2)) --drift-category electronics --drift-shift 1.5 | npx pino-pretty --singleLine --ignore pid,service

echo
echo "== topics"
node bin/flywheel.js topics list 2>/dev/null
echo
echo "The stack keeps running: 'npm run flywheel -- stack down' stops it."
