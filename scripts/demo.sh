#!/usr/bin/env bash
# The main job on the local stack: build; start Kafka + Redis and create the topics; make sure a
# champion model exists (trained on simulated history if the registry is empty); start the
# scorer, the joiner, the labeler API, the trainer, the rollout controller, the monitor and the
# operator console; run the simulated
# shop (clicks, purchases, a mid-run drift, 1% malformed events) through them; midway, train a
# challenger and queue an experiment for it (a canary ramp, 10% then 50% of users, decided on
# live outcomes; experiments run one at a time, the trainer's candidates queued like it, never
# replacing it); wait for a ramp to advance; then show what landed where, and the report. The demo's attribution window and allowed lateness are short
# (DEMO_WINDOW_MS 20 s, 5 s) and its shoppers buy ten times sooner than the simulated shop's own
# (a median of 6 s, not a minute), so labeled feedback appears within the run; the trainer learns from
# it and proposes candidates (every DEMO_CANDIDATE_EVERY examples, on drift, and once on an
# operator's request at the end), which the gate accepts or rejects with its reasons. After the
# traffic, a backfill trains a fresh model from the labeled history while predictions go on.
# Settings: DEMO_RATE (events/s, default 300), DEMO_DURATION (seconds, default 60), DEMO_SEED.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RATE=${DEMO_RATE:-300}
DURATION=${DEMO_DURATION:-60}
SEED=${DEMO_SEED:-$RANDOM}
export FW_HTTP_PORT=${FW_HTTP_PORT:-8080}
export FW_LABELING_PORT=${FW_LABELING_PORT:-8082}
export FW_JOINER_HTTP_PORT=${FW_JOINER_HTTP_PORT:-8083}
export FW_JOIN_WINDOW_MS=${DEMO_WINDOW_MS:-20000}
export FW_JOIN_ALLOWED_LATENESS_MS=${FW_JOIN_ALLOWED_LATENESS_MS:-5000}
export FW_JOIN_IDLE_MS=${FW_JOIN_IDLE_MS:-5000}
export FW_ADMIN_TOKEN=${FW_ADMIN_TOKEN:-demo-admin-token-0123456789}
export FW_LABELER_TOKENS=${FW_LABELER_TOKENS:-ann:demo-labeler-token-0123456789}
LABELER_TOKEN=${FW_LABELER_TOKENS#*:}
LABELER_TOKEN=${LABELER_TOKEN%%,*}
fw() { node bin/flywheel.js "$@"; }
pretty() { npx pino-pretty --singleLine --ignore pid,hostname; }

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run -s build
fw stack up

if ! fw models ls 2>/dev/null | grep -q champion; then
  echo "== no champion yet: training one on simulated history"
  fw models train --kind ftrl --clicks 60000 --data-seed "$SEED" 2>&1 | grep -v '"level"' || true
  first=$(fw models ls | awk '/^v[0-9]/ {v=$1} END {print v}')
  fw models promote "$first" --to champion --reason "demo: first model" 2>/dev/null
fi

# Started with node directly (not through the fw function) so $! is the service's own pid.
echo "== scorer (predict API on :$FW_HTTP_PORT), joiner (:$FW_JOINER_HTTP_PORT), trainer (:${FW_TRAINER_HTTP_PORT:-8084}), labeler API (:$FW_LABELING_PORT) and rollout controller (:${FW_ROLLOUT_HTTP_PORT:-8086})"
node bin/flywheel.js scorer > .stack/scorer.log 2>&1 &
SCORER=$!
node bin/flywheel.js joiner > .stack/joiner.log 2>&1 &
JOINER=$!
node bin/flywheel.js labeling > .stack/labeling.log 2>&1 &
LABELING=$!
# The trainer's candidates are queued for experiments with a ramp a one-minute demo can pass.
FW_TRAINER_CHECKPOINT_MS=2000 FW_TRAINER_CANDIDATE_EVERY=${DEMO_CANDIDATE_EVERY:-5000} \
  FW_TRAINER_EXPERIMENT_STEPS=0.1,0.5 FW_TRAINER_EXPERIMENT_MIN_OUTCOMES=200 \
  node bin/flywheel.js trainer > .stack/trainer.log 2>&1 &
TRAINER=$!
FW_ROLLOUT_TICK_MS=1000 node bin/flywheel.js rollout controller > .stack/rollout.log 2>&1 &
ROLLOUT=$!
# The monitor looks every 2 s and judges quality a join window behind the newest click; it asks
# the trainer for a candidate on drift. The console (:8088, the admin token) draws it all.
FW_MONITOR_DIR=.stack/monitor FW_MONITOR_LOOK_MS=2000 FW_MONITOR_LABEL_LAG_MS=$((FW_JOIN_WINDOW_MS + 5000)) \
  FW_MONITOR_WINDOW_MS=300000 FW_MONITOR_TRAINER_URL=http://127.0.0.1:${FW_TRAINER_HTTP_PORT:-8084} \
  node bin/flywheel.js monitor > .stack/monitor.log 2>&1 &
MONITOR=$!
node bin/flywheel.js console > .stack/console.log 2>&1 &
CONSOLE=$!
echo "== monitor (:${FW_MONITOR_HTTP_PORT:-8087}) and operator console: http://127.0.0.1:${FW_CONSOLE_PORT:-8088} (token \$FW_ADMIN_TOKEN, while the demo runs)"
trap 'kill -TERM $SCORER $JOINER $LABELING $TRAINER $ROLLOUT $MONITOR $CONSOLE 2>/dev/null; wait $SCORER $JOINER $LABELING $TRAINER $ROLLOUT $MONITOR $CONSOLE 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$FW_HTTP_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
# A service that died at start (bad config, an unusable checkpoint) stops the demo, with its log.
alive() {
  for name in scorer joiner labeling trainer rollout monitor console; do
    pid_var=${name^^}
    if ! kill -0 "${!pid_var}" 2>/dev/null; then
      echo "!! the $name died; the end of .stack/$name.log:" >&2
      tail -5 ".stack/$name.log" >&2
      exit 1
    fi
  done
}
sleep 2
alive

echo "== simulated shop: $RATE events/s for $DURATION s (seed $SEED); electronics converts better from the midpoint"
fw simulate --rate "$RATE" --duration "$DURATION" --seed "$SEED" --malformed 0.01 --purchase-delay-scale 0.1 \
  --drift-at $((DURATION / 2)) --drift-category electronics --drift-shift 1.5 2>&1 | pretty &
SIM=$!
sleep $((DURATION / 2))
echo "== training a challenger (logistic regression) and starting a canary experiment with it"
# Its version from the train command's own output: the trainer registers candidates meanwhile.
trained=$(fw models train --kind logreg --clicks 60000 --data-seed $((SEED + 1)) 2>&1 | grep -v '"level"' || true)
echo "$trained"
challenger=$(echo "$trained" | awk '/^registered v[0-9]+/ {sub(":", "", $2); print $2; exit}')
# Purchases decide (the simulated shop buys the same whichever model scores); 10% of users, then
# 50% once 150 of its outcomes show no harm. The controller starts it at its next look.
fw rollout start "$challenger" --primary purchaseRate --steps 0.1,0.5 --min-outcomes 150 \
  --reason "demo: try logistic regression" 2>/dev/null || echo "  (the experiment was not started: see above)"
wait $SIM
alive

echo
echo "== backfill: a fresh FTRL model from the labeled history in Kafka, in its own process; the predict API keeps answering"
node bin/flywheel.js train --from earliest --to latest > .stack/train.log 2>&1 &
TRAIN=$!
while kill -0 $TRAIN 2>/dev/null; do
  curl -s -o /dev/null -w "  predict during the backfill: HTTP %{http_code} in %{time_total} s\n" -X POST \
    "http://127.0.0.1:$FW_HTTP_PORT/v1/predict" -H 'content-type: application/json' \
    -d "{\"event\":{\"eventId\":\"demo-b\",\"userId\":\"user-000042\",\"sessionId\":\"demo\",\"itemId\":\"item-00007\",\"category\":\"electronics\",\"price\":99.5,\"device\":\"desktop\",\"country\":\"DE\",\"referrer\":\"email\",\"eventTime\":$(date +%s000)}}"
  sleep 2
done
wait $TRAIN || echo "  (backfill failed: see .stack/train.log)"
grep -v '"level"' .stack/train.log || true

echo
echo "== a prediction over HTTP"
curl -s -X POST "http://127.0.0.1:$FW_HTTP_PORT/v1/predict" -H 'content-type: application/json' \
  -d "{\"event\":{\"eventId\":\"demo-1\",\"userId\":\"user-000042\",\"sessionId\":\"demo\",\"itemId\":\"item-00007\",\"category\":\"electronics\",\"price\":99.5,\"device\":\"desktop\",\"country\":\"DE\",\"referrer\":\"email\",\"eventTime\":$(date +%s000)}}"
echo
echo
echo "== human review: uncertain predictions queued by the scorer; a labeler takes one and labels it"
curl -s -H "authorization: Bearer $FW_ADMIN_TOKEN" "http://127.0.0.1:$FW_LABELING_PORT/v1/queue/stats"
echo
task=$(curl -s -H "authorization: Bearer $LABELER_TOKEN" "http://127.0.0.1:$FW_LABELING_PORT/v1/tasks/next")
echo "$task" | head -c 400
echo
task_id=$(echo "$task" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).task.id)}catch{}})')
if [ -n "$task_id" ]; then
  curl -s -X POST -H "authorization: Bearer $LABELER_TOKEN" -H 'content-type: application/json' \
    -d '{"label":1,"note":"demo"}' "http://127.0.0.1:$FW_LABELING_PORT/v1/tasks/$task_id/label"
  echo
fi
echo
echo "== outcome joiner: labeled feedback so far (window ${FW_JOIN_WINDOW_MS} ms)"
curl -s "http://127.0.0.1:$FW_JOINER_HTTP_PORT/metrics" | grep -E '^flywheel_joiner_(labels_total|pending|late_inputs_total|unattributed_purchases_total|corrections_total|purchases_repartitioned_total)' || true
echo
echo "== trainer: learning from the labeled feedback (newest ${FW_TRAINER_HOLDOUT:-2000} examples held out)"
curl -s "http://127.0.0.1:${FW_TRAINER_HTTP_PORT:-8084}/metrics" | grep -E '^flywheel_trainer_(examples_total|learned|progressive_logloss|checkpoints_total|candidates_total|drift_alarms_total)' || true
echo "== an operator asks the trainer for a candidate now; the gate answers"
fw trainer propose --reason "demo: operator check" 2>/dev/null || true
echo "== freshness: newest outcome a version learned from → serving in the scorer (seconds)"
curl -s "http://127.0.0.1:$FW_HTTP_PORT/metrics" | grep -E '^flywheel_scorer_outcome_to_live_seconds_(sum|count)' || echo "(no trainer version went live in this run)"
echo
echo "== experiments: one runs at a time (canary ramp, decided on live outcomes), the others queue"
# The experiment that got furthest: the most decisions (start, advance, …).
furthest() {
  fw rollout ls --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const e=JSON.parse(s).sort((a,b)=>b.decisions.length-a.decisions.length)[0];if(e)console.log(e.id+" "+e.decisions.map(d=>d.action).join(","))}catch{}})'
}
for _ in $(seq 1 30); do
  case "$(furthest)" in *advance* | *promote* | *rollback* | *inconclusive*) break ;; esac
  echo "  waiting for a ramp to move: $(furthest)"
  sleep 3
done
fw rollout ls 2>/dev/null || true
experiment=$(furthest | cut -d' ' -f1)
if [ -n "$experiment" ]; then
  fw rollout status "$experiment" 2>/dev/null || true
  fw rollout report "$experiment" --out .stack/experiment.html 2>/dev/null || true
fi
echo
echo "== monitor: each version and arm's live figures, drift against its reference, alerts"
curl -s -H "authorization: Bearer $FW_ADMIN_TOKEN" "http://127.0.0.1:${FW_MONITOR_HTTP_PORT:-8087}/v1/monitor" | node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  try {
    const look = JSON.parse(s);
    const f = (x) => (x === null || x === undefined ? "-" : x.toFixed(3));
    for (const o of look.observations) {
      const q = o.quality;
      const drifted = o.drift ? (o.drift.drifted.join(", ") || "none") : "no reference";
      console.log(`  ${o.version} ${o.arm}: ${q.predictions} predictions, ${q.labels} labels, log loss ${f(q.logLoss)} (estimated ${f(q.estimate.logLoss)}), purchase rate ${f(q.purchaseRate)} vs predicted ${f(q.predictedRate)}; drifted: ${drifted}`);
    }
    for (const a of look.judgement.alerts) console.log(`  alert: ${a.message}`);
  } catch { console.log("  (the monitor did not answer)"); }
});' || true
curl -s -H "authorization: Bearer $FW_ADMIN_TOKEN" "http://127.0.0.1:${FW_MONITOR_HTTP_PORT:-8087}/v1/monitor/alerts" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const a=JSON.parse(s).alerts;console.log("  "+a.length+" alerts in this run"+(a.length?", the newest: "+a[a.length-1].message:""))}catch{}})' || true
echo
echo "== topics"
fw topics list 2>/dev/null
echo
echo "== models"
fw models ls 2>/dev/null
echo
echo "== newest dead letters (malformed events, with the reason each was rejected)"
fw dlq --count 6 2>/dev/null
echo
echo "Logs: .stack/scorer.log, .stack/joiner.log, .stack/trainer.log, .stack/labeling.log, .stack/rollout.log, .stack/monitor.log, .stack/console.log; the experiment's report: .stack/experiment.html. To look again: FW_ADMIN_TOKEN=$FW_ADMIN_TOKEN FW_MONITOR_DIR=.stack/monitor npm run flywheel -- monitor, and FW_ADMIN_TOKEN=$FW_ADMIN_TOKEN npm run flywheel -- console (http://127.0.0.1:8088, the same token). The stack keeps running: 'npm run flywheel -- stack down' stops it."
