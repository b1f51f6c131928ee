#!/usr/bin/env python
"""Memory: bertkit's inference streams, and a grid search does not accumulate.

Two checks of issue 5's memory point, each configuration in its own process:

``stream``  ``BertEmbedder.transform`` on N distinct texts (SST-2, CoNLL-2003, WikiText-2
            and STS-B sentences). The resident set size (RSS) is sampled every 20 ms
            during the call; the record gives the peak growth over the RSS just before it,
            the size of the returned array, and their difference: the working set. Run at
            two sizes (default 10,000 and 100,000), the working set must not grow with N.
            The texts come in that order, so 100,000 include long WikiText-2 sentences
            that 10,000 do not. ``--heap-slack-mb`` sets bertkit's ``HEAP_SLACK`` (the
            resident growth at which a prediction trims the heap; 1e6 turns it off).
``grid``    ``GridSearchCV`` over a ``BertClassifier`` (2 learning rates x 2 batch sizes,
            2 folds: 8 fits, then the refit) on SST-2 sentences. The scorer records the RSS
            after every fit; the record gives the growth after the first fit.

  .venv/bin/python benchmarks/bench_memory.py                    # both, ~15 min
  .venv/bin/python benchmarks/bench_memory.py --checks grid
  .venv/bin/python benchmarks/bench_memory.py --sizes 1000,20000 --checks stream
  .venv/bin/python benchmarks/bench_memory.py --checks stream --heap-slack-mb 1000000   # no trims
  .venv/bin/python benchmarks/bench_memory.py --summarize benchmarks/results/memory.jsonl

Results are appended to ``results/memory.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HERE = Path(__file__).resolve().parent
MB = 1024.0 * 1024.0


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakRss:
    """Samples the RSS every ``interval`` seconds while the block runs."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.before = self.peak = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self):
        self.before = self.peak = rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def distinct_texts(n: int) -> list[str]:
    """``n`` distinct sentences from the shared data: SST-2 train, CoNLL-2003, WikiText-2
    valid/test, STS Benchmark and CommonsenseQA questions, in that order."""
    from bertkit import datasets

    data = common.data_dir()
    texts, _ = common.load_sst2("train")
    sources = [
        lambda: texts,
        lambda: [" ".join(words) for split in ("train", "valid", "test")
                 for words in datasets.read_conll(data / "conll2003" / f"{split}.txt")["tokens"]],
        lambda: [s for split in ("valid", "test")
                 for doc in datasets.read_wikitext(data / "wikitext2_raw" / f"wiki.{split}.raw")["sentences"]
                 for s in doc],
        lambda: [s for split in ("train", "dev", "test") for col in ("sentence1", "sentence2")
                 for s in datasets.read_sts(data / "stsbenchmark" / f"sts-{split}.csv")[col]],
        lambda: [q for split in ("train_rand_split", "dev_rand_split")
                 for q in datasets.read_multiple_choice(data / "commonsenseqa" / f"{split}.jsonl")["prompt"]],
    ]
    out: dict[str, None] = {}
    for source in sources:
        for text in source():
            if len(text.split()) >= 3:
                out[text] = None
        if len(out) >= n:
            return list(out)[:n]
    raise SystemExit(f"only {len(out)} distinct sentences in the shared data, asked for {n}")


def run_stream(n: int, batch_size: int, heap_slack_mb: float | None = None) -> dict:
    import gc

    import torch

    import bertkit
    from bertkit.training import _loop

    if heap_slack_mb is not None:  # bertkit trims the heap when RSS grows by more than this
        _loop.HEAP_SLACK = int(heap_slack_mb * MB)

    texts = distinct_texts(n)
    emb = bertkit.BertEmbedder(batch_size=batch_size, device="cpu")
    emb.fit()
    emb.transform(texts[:256])  # warm: weights paged in, allocator primed
    gc.collect()
    start = time.perf_counter()
    with PeakRss() as rss:
        out = emb.transform(texts)
    wall = time.perf_counter() - start
    after = rss_mb()
    output_mb = out.nbytes / MB
    growth = rss.peak - rss.before
    from bertkit.estimators._base import CACHES

    return {"check": "stream", "n_texts": n, "batch_size": batch_size, "wall_s": round(wall, 1),
            "texts_per_s": round(n / wall, 1), "rss_before_mb": round(rss.before, 1),
            "rss_peak_mb": round(rss.peak, 1), "growth_mb": round(growth, 1), "output_mb": round(output_mb, 1),
            "rss_after_mb": round(after, 1), "working_set_mb": round(growth - output_mb, 1), "cached_texts": len(CACHES.texts),
            "cache_mb": round(CACHES.n_bytes / MB, 1), "heap_slack_mb": round(_loop.HEAP_SLACK / MB, 1),
            "threads": torch.get_num_threads()}


def run_grid(n: int) -> dict:
    import warnings

    import numpy as np
    from sklearn.model_selection import GridSearchCV

    import bertkit

    texts, labels = common.load_sst2("train", limit=n, seed=0)
    X, y = np.asarray(texts, dtype=object), np.asarray(labels)
    after_fit: list[float] = []

    def scorer(est, X_, y_):
        after_fit.append(rss_mb())
        return est.score(X_, y_)

    grid = GridSearchCV(
        bertkit.BertClassifier(n_epochs=1, max_length=64, device="cpu", random_state=0),
        {"learning_rate": [5e-5, 1e-4], "batch_size": [16, 32]}, cv=2, scoring=scorer, n_jobs=1, refit=True,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid.fit(X, y)
    after_fit.append(rss_mb())  # after the refit
    wall = time.perf_counter() - start
    first = after_fit[0]
    return {"check": "grid", "n_texts": n, "n_fits": len(after_fit), "wall_s": round(wall, 1),
            "rss_after_each_fit_mb": [round(v, 1) for v in after_fit],
            "growth_after_first_fit_mb": round(max(after_fit[1:]) - first, 1),
            "last_minus_first_mb": round(after_fit[-1] - first, 1),
            "best_params": grid.best_params_, "best_score": round(float(grid.best_score_), 4)}


def table(records: list[dict]) -> str:
    lines = []
    streams = [r for r in records if r.get("check") == "stream"]
    if streams:
        lines += ["| texts | heap slack MB | texts/s | RSS before MB | peak growth MB | output MB | working set MB "
                  "| RSS after MB | cached texts (MB) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['n_texts']:,} | {r.get('heap_slack_mb', '-')} | {r['texts_per_s']} | {r['rss_before_mb']} | "
                  f"{r['growth_mb']} | {r['output_mb']} | {r['working_set_mb']} | {r.get('rss_after_mb', '-')} | "
                  f"{r['cached_texts']:,} ({r.get('cache_mb', '-')}) |" for r in streams]
    for r in (r for r in records if r.get("check") == "grid"):
        lines += ["", f"grid search, {r['n_fits']} fits on {r['n_texts']:,} texts in {r['wall_s']} s: RSS after each "
                  f"fit {r['rss_after_each_fit_mb']} MB; max growth after the first fit "
                  f"{r['growth_after_first_fit_mb']} MB (last - first {r['last_minus_first_mb']} MB)"]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checks", default="stream,grid", help="comma list of: stream, grid")
    p.add_argument("--sizes", default="10000,100000", help="stream: numbers of texts")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grid-texts", type=int, default=2000)
    p.add_argument("--threads", type=int, default=common.THREADS)
    p.add_argument("--heap-slack-mb", type=float, default=None,
                   help="stream: bertkit's HEAP_SLACK (default: bertkit's; a huge value turns the guard off)")
    p.add_argument("--out", default=str(HERE / "results" / "memory.jsonl"))
    p.add_argument("--summarize", nargs="+", metavar="JSONL")
    p.add_argument("--one", help=argparse.SUPPRESS)  # "stream:N" or "grid:N": run here, JSON to stdout
    a = p.parse_args(argv)
    if a.summarize:
        print(table([r for path in a.summarize for r in common.read_jsonl(path)]))
        return
    if a.one:
        common.set_threads(a.threads)
        check, n = a.one.split(":")
        record = run_stream(int(n), a.batch_size, a.heap_slack_mb) if check == "stream" else run_grid(int(n))
        print(json.dumps(record), flush=True)
        return
    runs = []
    checks = [c.strip() for c in a.checks.split(",")]
    if "stream" in checks:
        runs += [f"stream:{int(s)}" for s in a.sizes.split(",")]
    if "grid" in checks:
        runs.append(f"grid:{a.grid_texts}")
    records = []
    for run in runs:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", run, "--threads", str(a.threads),
               "--batch-size", str(a.batch_size)]
        if a.heap_slack_mb is not None:
            cmd += ["--heap-slack-mb", str(a.heap_slack_mb)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=common.thread_env(a.threads))
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{run} failed (exit {done.returncode})")
        record = json.loads(done.stdout.strip().splitlines()[-1])
        common.emit(record, a.out)
        records.append(record)
        print(run, "done", flush=True)
    print(table(records))


if __name__ == "__main__":
    main()
