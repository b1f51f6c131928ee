#!/usr/bin/env python
"""Which default learning rate should BertClassifier / BertRegressor have?

Fits each estimator with its own defaults (3 epochs, batch 32, warm-up 0.1, weight decay
0.01) on the default model, changing only ``learning_rate``, on small and medium training
sets, and scores the full dev sets: SST-2 accuracy (872 sentences) and STS-B Spearman
(1,500 pairs). Accuracy only: timings here are not comparable (run it on a busy machine
if you like). One JSON line per fit to ``--out``; a table at the end.

    python benchmarks/sweep_lr.py                       # ~15 min on an idle 2-core machine
    python benchmarks/sweep_lr.py --summarize benchmarks/results/lr_sweep.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import numpy as np  # noqa: E402

RATES = (2e-5, 5e-5, 1e-4, 2e-4)
#: (task, training-set size, seeds)
PLAN = (("sst2", 500, (0, 1)), ("sst2", 2000, (0, 1)), ("stsb", 1000, (0,)))


def _data(task: str, n: int, seed: int):
    """A seeded training subset of ``n`` and the whole dev set."""
    load = common.load_sst2 if task == "sst2" else common.load_stsb
    X, y = load("train", limit=n, seed=seed)
    X_dev, y_dev = load("dev")
    return X, np.asarray(y), X_dev, np.asarray(y_dev)


def run_one(task: str, n: int, seed: int, rate: float) -> dict:
    from scipy.stats import spearmanr

    from bertkit import BertClassifier, BertRegressor

    X, y, X_dev, y_dev = _data(task, n, seed)
    cls = BertClassifier if task == "sst2" else BertRegressor
    started = time.perf_counter()
    est = cls(learning_rate=rate, random_state=seed).fit(X, y)
    fit_s = time.perf_counter() - started
    if task == "sst2":
        metric = float((est.predict(X_dev) == y_dev).mean())
    else:
        metric = float(spearmanr(est.predict(X_dev), y_dev).statistic)
    return {"task": task, "n_train": n, "seed": seed, "learning_rate": rate,
            "metric_name": "accuracy" if task == "sst2" else "spearman", "metric": metric,
            "train_loss_last_epoch": est.history_[-1]["train_loss"], "fit_s": fit_s,
            "params": {k: v for k, v in est.get_params().items() if k != "model"}}


def summarize(path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    table = frame.groupby(["task", "n_train", "learning_rate"])["metric"].agg(["mean", "count"]).unstack(2)
    print(table.round(4).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lr_sweep.jsonl")
    parser.add_argument("--summarize", type=Path)
    parser.add_argument("--rates", type=float, nargs="+", default=RATES, help="learning rates to try")
    parser.add_argument("--only", nargs="+", metavar="TASK:N:SEED",
                        help="run only these (task, size, seed) cells, e.g. sst2:2000:0 stsb:1000:0")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    common.set_threads()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cells = [(t, n, s) for t, n, seeds in PLAN for s in seeds]
    if args.only:
        cells = [(t, int(n), int(s)) for t, n, s in (cell.split(":") for cell in args.only)]
    for task, n, seed in cells:
        for rate in args.rates:
            record = run_one(task, n, seed, rate)
            record.update(versions=common.versions(), time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            with args.out.open("a") as out:
                out.write(json.dumps(record) + "\n")
            print(f"{task} n={n} seed={seed} lr={rate:g}: {record['metric']:.4f} ({record['fit_s']:.0f} s)",
                  flush=True)
    summarize(args.out)


if __name__ == "__main__":
    main()
