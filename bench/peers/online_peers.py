"""Online logistic-regression peers for the trainer benchmark: River and Vowpal Wabbit learn the
same examples in the same order as Flywheel's learner (one pass, each example once), then score
the same holdout. Prints one JSON object: examples/s (median of the repeats) and holdout log loss
per learner.

Input (NDJSON, from bench/trainer.ts): {"i": [indices], "v": [values], "y": 0|1, "h": 0|1}
where h=1 marks the holdout (scored, never learned)."""
import json
import math
import statistics
import sys
import time


def log_loss(pairs):
    eps = 1e-7
    total = 0.0
    for p, y in pairs:
        p = min(1 - eps, max(eps, p))
        total += -math.log(p) if y else -math.log(1 - p)
    return total / max(1, len(pairs))


def run_river(train, holdout):
    from river import linear_model

    model = linear_model.LogisticRegression()
    rows = [({str(i): v for i, v in zip(e["i"], e["v"])}, bool(e["y"])) for e in train]
    started = time.perf_counter()
    for x, y in rows:
        model.learn_one(x, y)
    elapsed = time.perf_counter() - started
    scored = [(model.predict_proba_one({str(i): v for i, v in zip(e["i"], e["v"])}).get(True, 0.0), e["y"]) for e in holdout]
    return len(rows) / elapsed, log_loss(scored)


def run_vw(train, holdout, extra):
    from vowpalwabbit import Workspace

    model = Workspace(f"--loss_function logistic --link logistic -b 20 --quiet {extra}")
    def line(e, label=True):
        features = " ".join(f"{i}:{v}" for i, v in zip(e["i"], e["v"]))
        return (f"{1 if e['y'] else -1} " if label else "") + f"|f {features}"
    rows = [line(e) for e in train]
    started = time.perf_counter()
    for row in rows:
        model.learn(row)
    elapsed = time.perf_counter() - started
    scored = [(model.predict(line(e, label=False)), e["y"]) for e in holdout]
    model.finish()
    return len(rows) / elapsed, log_loss(scored)


def main():
    path, repeats = sys.argv[1], int(sys.argv[2])
    with open(path) as f:
        examples = [json.loads(line) for line in f]
    train = [e for e in examples if not e["h"]]
    holdout = [e for e in examples if e["h"]]
    peers = {
        "River LogisticRegression": lambda: run_river(train, holdout),
        "Vowpal Wabbit (default SGD)": lambda: run_vw(train, holdout, ""),
        "Vowpal Wabbit --ftrl": lambda: run_vw(train, holdout, "--ftrl"),
    }
    out = {}
    for name, run in peers.items():
        rates, losses = [], []
        for _ in range(repeats):
            rate, loss = run()
            rates.append(rate)
            losses.append(loss)
        out[name] = {"examplesPerSecond": statistics.median(rates), "rates": rates, "holdoutLogLoss": losses[-1]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
