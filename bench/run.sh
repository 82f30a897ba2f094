#!/usr/bin/env bash
# All benchmarks, apart from the tests: npm run bench [-- models]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
if [ "$which" = all ] || [ "$which" = models ]; then
  echo "== models: training and inference throughput per kind and backend"
  node --import tsx bench/models.ts
fi
if [ "$which" = all ] || [ "$which" = scorer ]; then
  echo "== scorer: stream throughput vs a KafkaJS passthrough, HTTP predict vs a static route"
  node bin/flywheel.js stack up >/dev/null
  node --import tsx bench/scorer.ts
fi
if [ "$which" = all ] || [ "$which" = joiner ]; then
  echo "== joiner: joined predictions/s with 100k pending in Redis vs a KafkaJS passthrough"
  node bin/flywheel.js stack up >/dev/null
  node --import tsx bench/joiner.ts
fi
if [ "$which" = all ] || [ "$which" = monitor ]; then
  echo "== monitor: drift flagged, estimate before labels, retrains per cooldown, false alarms per day (no broker)"
  node --import tsx bench/monitor.ts
fi
if [ "$which" = all ] || [ "$which" = console ]; then
  echo "== console: first paint of each view with a year of history vs a fresh install (Chromium)"
  node bin/flywheel.js stack up >/dev/null
  node --import tsx bench/console.ts
fi
if [ "$which" = all ] || [ "$which" = rollout ]; then
  echo "== rollout: the experiment decision core's error rates over seeded simulations (no broker)"
  node --import tsx bench/rollout.ts
fi
if [ "$which" = all ] || [ "$which" = trainer ]; then
  echo "== trainer: examples/s from Kafka vs River and Vowpal Wabbit; freshness outcome → live"
  node bin/flywheel.js stack up >/dev/null
  # The peers come from PyPI into a venv of their own (where the machine reaches PyPI).
  if [ ! -x bench/.venv/bin/python ]; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet river vowpalwabbit || echo "peers not installed: their rows will say so"
  fi
  node --import tsx bench/trainer.ts
fi
if [ "$which" = all ] || [ "$which" = outside ]; then
  echo "== outside data: a public clickstream (retentioneering's simple shop, PyPI) replayed through the loop"
  node bin/flywheel.js stack up >/dev/null
  # The data and scikit-learn come from PyPI into bench's own folders; the data's licence is
  # non-commercial and restricts redistribution, so it is fetched here and never committed.
  [ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet numpy scikit-learn
  mkdir -p bench/.cache/outside
  [ -f bench/.cache/outside/retentioneering-3.3.0-py3-none-any.whl ] ||
    bench/.venv/bin/pip download --quiet --no-deps --ignore-requires-python retentioneering==3.3.0 -d bench/.cache/outside
  bench/.venv/bin/python bench/outside/convert.py >/dev/null
  bench/.venv/bin/python bench/outside/offline.py
  node --import tsx bench/outside.ts "${@:2}"
fi
if [ "$which" = all ] || [ "$which" = drift ]; then
  echo "== drift: the simulated shop with a drift replayed through the loop; served vs the frozen champion"
  node bin/flywheel.js stack up >/dev/null
  node --import tsx bench/drift.ts "${@:2}"
fi
if [ "$which" = all ] || [ "$which" = labeling ]; then
  echo "== labeling queue: next+submit pairs/s with 20 labelers vs a plain Redis list"
  node bin/flywheel.js stack up >/dev/null
  node --import tsx bench/labeling.ts
fi
if [ "$which" = all ] || [ "$which" = labelers ]; then
  echo "== labelers: scripted labelers of known accuracy through the real services; censored purchases; the replacing policy"
  node bin/flywheel.js stack up >/dev/null
  node --import tsx bench/labelers.ts "${@:2}"
fi
