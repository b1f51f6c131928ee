#!/usr/bin/env python
"""What ``precision="int8"`` (and ``"bf16"``) cost in accuracy, against fp32 bertkit.

Two checks of issue 5's int8 point, in this process, default model, 2 threads:

``embed``       ``BertEmbedder.transform`` of the first 4,096 SST-2 train sentences
                (max_length 128) and of the 256 WikiText-2 paragraphs of
                ``bench_embed.py`` (max_length 512): cosine of each int8 and bf16
                embedding to the fp32 one (minimum, 1st percentile, mean, and the
                worst text), for each int8 setting asked for.
``classifier``  a ``BertClassifier`` fine-tuned in fp32 on 4,000 SST-2 train sentences
                (3 epochs, max_length 64, its defaults otherwise), then SST-2 dev
                accuracy with fp32, int8 and bf16 predictions, and how many int8
                predictions agree with fp32.

int8 settings (``--int8``): ``default`` (the library's: one range per call, outlier
channels in fp32; oneDNN kernels on CPUs with AMX, FBGEMM elsewhere), ``per-row`` and
``one-range`` (either, on this machine's kernels).

  .venv/bin/python benchmarks/int8_accuracy.py                      # both, ~5 min
  .venv/bin/python benchmarks/int8_accuracy.py --checks classifier --seeds 0,1
  .venv/bin/python benchmarks/int8_accuracy.py --quick              # smoke test

One JSON line per check and seed goes to ``results/int8_accuracy.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HERE = Path(__file__).resolve().parent
SETTINGS = {"default": False, "per-row": True, "one-range": False}  # default: as bertkit.training._quantize.PER_ROW


def _cosines(a, b):
    import numpy as np

    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _summary(cos, texts) -> dict:
    import numpy as np

    worst = int(np.argmin(cos))
    return {"min": round(float(cos.min()), 5), "p1": round(float(np.percentile(cos, 1)), 5),
            "mean": round(float(cos.mean()), 5), "below_0.99": int((cos < 0.99).sum()),
            "worst_text": texts[worst][:80]}


def _int8_setting(name: str):
    """Make the next int8 copies use setting ``name``."""
    import bertkit.training._quantize as q

    q.PER_ROW = SETTINGS[name]
    q._COPIES.clear()
    return {"engine": q.engine(), "per_row": q.default_per_row(), "weight_max": q.weight_max()}


def check_embed(a) -> list[dict]:
    import bench_embed

    import bertkit

    model_dir = common.default_model_dir()
    records = []
    n = {"sst2": 512 if a.quick else 4096, "wiki-long": 16 if a.quick else 256}
    for corpus, max_length in (("sst2", 128), ("wiki-long", 512)):
        texts = bench_embed.load_corpus(corpus, n[corpus], model_dir)
        ref = bertkit.BertEmbedder(model=model_dir, max_length=max_length, device="cpu").fit().transform(texts)
        record = {"check": "embed", "corpus": corpus, "n_texts": len(texts)}
        for name in a.int8:
            info = _int8_setting(name)
            est = bertkit.BertEmbedder(model=model_dir, max_length=max_length, device="cpu", precision="int8").fit()
            record[f"int8_{name}"] = {**_summary(_cosines(est.transform(texts), ref), texts), **info}
        est = bertkit.BertEmbedder(model=model_dir, max_length=max_length, device="cpu", precision="bf16").fit()
        record["bf16"] = _summary(_cosines(est.transform(texts), ref), texts)
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


def check_classifier(a, seed: int) -> dict:
    import numpy as np

    import bertkit

    X, y = common.load_sst2("train", 300 if a.quick else 4000, seed=0)
    X_dev, y_dev = common.load_sst2("dev")
    y_dev = np.asarray(y_dev)
    clf = bertkit.BertClassifier(max_length=64, n_epochs=1 if a.quick else 3, random_state=seed, device="cpu")
    started = time.perf_counter()
    clf.fit(X, y)
    record = {"check": "classifier", "seed": seed, "n_train": len(X), "n_dev": len(X_dev),
              "fit_s": round(time.perf_counter() - started, 1)}
    fp32 = clf.predict(X_dev)
    record["fp32"] = round(float(np.mean(fp32 == y_dev)), 4)
    for name in a.int8:
        info = _int8_setting(name)
        pred = clf.set_params(precision="int8").predict(X_dev)
        record[f"int8_{name}"] = {"accuracy": round(float(np.mean(pred == y_dev)), 4),
                                  "agree_with_fp32": round(float(np.mean(pred == fp32)), 4), **info}
    pred = clf.set_params(precision="bf16").predict(X_dev)
    record["bf16"] = {"accuracy": round(float(np.mean(pred == y_dev)), 4),
                      "agree_with_fp32": round(float(np.mean(pred == fp32)), 4)}
    print(json.dumps(record), flush=True)
    return record


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checks", default="embed,classifier", help="comma list of: embed, classifier")
    p.add_argument("--int8", default="default,one-range",
                   help=f"comma list of int8 settings: {', '.join(SETTINGS)}")
    p.add_argument("--seeds", default="0", help="classifier: comma list of random_state values")
    p.add_argument("--quick", action="store_true", help="small subsets (smoke test)")
    p.add_argument("--threads", type=int, default=common.THREADS)
    p.add_argument("--out", default=str(HERE / "results" / "int8_accuracy.jsonl"))
    a = p.parse_args(argv)
    a.int8 = [s.strip() for s in a.int8.split(",")]
    unknown = sorted(set(a.int8) - set(SETTINGS))
    if unknown:
        p.error(f"unknown int8 setting(s) {unknown}; choose from {sorted(SETTINGS)}")
    common.set_threads(a.threads)
    warnings.filterwarnings("ignore", message=".*newly initialised.*")
    records = []
    checks = [c.strip() for c in a.checks.split(",")]
    if "embed" in checks:
        records += check_embed(a)
    if "classifier" in checks:
        records += [check_classifier(a, int(s)) for s in a.seeds.split(",")]
    stamp = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": a.quick,
             "versions": common.versions(), "machine": common.machine()}
    with open(a.out, "a") as f:
        for record in records:
            f.write(json.dumps({"bench": "int8_accuracy", **record, **stamp}) + "\n")


if __name__ == "__main__":
    main()
