#!/usr/bin/env bash
# All benchmarks, apart from the tests: npm run bench [-- models]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
if [ "$which" = all ] || [ "$which" = models ]; then
  echo "== models: training and inference throughput per kind and backend"
  node --import tsx bench/models.ts
fi
