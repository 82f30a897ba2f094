#!/usr/bin/env bash
# The README's test command (npm test): static checks, then the local stack (started if it is
# not running), then every test — unit tests and integration tests on the real Kafka and Redis.
set -euo pipefail
shopt -s globstar nullglob
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Independent clients used by the wire-format and outside-clients tests (librdkafka's kcat and
# python3-confluent-kafka, Apache Avro for Python)
# and the browser for the labeler-page test (Debian's chromium, driven by playwright-core).
missing=()
command -v kcat >/dev/null || missing+=(kcat)
/usr/bin/python3 -c 'import avro.io' 2>/dev/null || missing+=(python3-avro)
/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null || missing+=(python3-confluent-kafka)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = "true" ] && [ "$(id -u)" = "0" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "tests need: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

echo "== typecheck, lint, format"
npx tsc -p tsconfig.json --noEmit
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }

echo "== local stack"
# From the sources, not dist/: the tests are about this checkout.
node --import tsx services/cli/index.ts stack up

echo "== tests"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test/unit/**/*.test.ts test/integration/**/*.test.ts)
# One file at a time: integration tests share one broker and one Redis on a 2-core machine.
# A test that hangs fails after 15 minutes, and a file whose failed test left a client open
# still ends (force exit), so one fault cannot hold the whole run until CI's limit.
exec node --import tsx --test --test-concurrency=1 --test-force-exit --test-timeout=900000 \
  --test-reporter=spec "${tests[@]}"
