"""Offline references on the converted simple-shop clicks (convert.py first): a constant and a
static logistic regression, scored per click on the last 30%, for bench/outside.ts to compare
with what Flywheel's loop served on the same clicks.

Each click is labeled by the joiner's default rule (convert.join_labels: same user and item,
30 min window, the latest matching click credited): these are the ground truth, computed from
the input events alone. Clicks in event-time order; the first 70% (by count) train, the last
30% test. On the test part:
  (a) constant: the training part's positive rate;
  (b) scikit-learn LogisticRegression (defaults, C=1) fitted once on the training part, one-hot
      features: item, UTC hour of day, UTC day of week, position in session (the number of
      earlier clicks in the session, capped at 5). The dataset has no country or device.
Writes offline.json: the split, the rates, both models' log loss and AUC, and per test click
its label and the logistic regression's score (the paired bootstrap is done in outside.ts).
"""
import argparse
import json
import os
from collections import Counter
from datetime import datetime, timezone

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from convert import CACHE, join_labels

TRAIN_SHARE = 0.7


def load(directory, name):
    with open(os.path.join(directory, name)) as f:
        return [json.loads(line) for line in f]


def features(clicks):
    """One row of categorical values per click; clicks must be in event-time order."""
    seen, rows = Counter(), []
    for c in clicks:
        t = datetime.fromtimestamp(c["eventTime"] / 1000, timezone.utc)
        rows.append([c["itemId"], t.hour, t.weekday(), min(seen[c["sessionId"]], 5)])
        seen[c["sessionId"]] += 1
    return np.array(rows, dtype=object)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=CACHE)
    args = ap.parse_args()
    clicks = load(args.dir, "clicks.jsonl")  # sorted by (eventTime, eventId)
    labels, _ = join_labels(clicks, load(args.dir, "purchases.jsonl"))
    y = np.array([labels[c["eventId"]] for c in clicks])
    X = features(clicks)  # over all clicks, so sessions crossing the split stay whole
    n_train = int(len(clicks) * TRAIN_SHARE)
    Xtr, Xte, ytr, yte = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
    rate = float(ytr.mean())
    enc = OneHotEncoder(handle_unknown="ignore")  # e.g. a day of week seen only in the test part
    model = LogisticRegression(max_iter=1000).fit(enc.fit_transform(Xtr), ytr)
    p_model = model.predict_proba(enc.transform(Xte))[:, 1]
    results = {
        "clicks": len(clicks),
        "train_clicks": n_train,
        "test_clicks": len(yte),
        "positives": int(y.sum()),
        "split_time": datetime.fromtimestamp(clicks[n_train]["eventTime"] / 1000, timezone.utc).isoformat(),
        "train_positive_rate": rate,
        "test_positive_rate": float(yte.mean()),
        "constant": {"log_loss": float(log_loss(yte, np.full(len(yte), rate), labels=[0, 1])), "auc": 0.5},
        "logistic": {"log_loss": float(log_loss(yte, p_model, labels=[0, 1])), "auc": float(roc_auc_score(yte, p_model))},
        "features": ["itemId", "hour_utc", "weekday_utc", "clicks_before_in_session_capped_5"],
        "versions": {"numpy": np.__version__, "scikit-learn": __import__("sklearn").__version__},
        "labels": {c["eventId"]: int(labels[c["eventId"]]) for c in clicks},
        "test": [{"eventId": c["eventId"], "label": int(yte[i]), "logistic": float(p_model[i])}
                 for i, c in enumerate(clicks[n_train:])],
    }
    with open(os.path.join(args.dir, "offline.json"), "w") as f:
        json.dump(results, f)
    print(f"train {n_train} clicks (rate {rate:.4f}), test {len(yte)} (rate {yte.mean():.4f}), split {results['split_time']}")
    for name in ("constant", "logistic"):
        print(f"{name:10} log loss {results[name]['log_loss']:.4f}  AUC {results[name]['auc']:.4f}")


if __name__ == "__main__":
    main()
