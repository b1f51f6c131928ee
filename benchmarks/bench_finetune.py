#!/usr/bin/env python
"""Fine-tuning benchmark: bertkit's BertClassifier / BertRegressor against
transformers' Trainer, on the same data, model and hyperparameters (CPU).

Tasks
  sst2  SST-2 sentiment (67,349 train sentences; dev accuracy on 872)
  stsb  STS Benchmark similarity regression on sentence pairs (5,749 train pairs;
        dev Spearman on 1,500)

Implementations (each run in its own process, started by this script with --impl)
  bertkit             BertClassifier/BertRegressor with the shared hyperparameters
                      passed explicitly (lr, batch, epochs, warmup ratio, weight decay,
                      max_grad_norm, max_length, seed)
  bertkit-default     the estimator with its own defaults, only n_epochs (and
                      random_state) set
  hf-trainer-grouped  transformers Trainer, AutoModelForSequenceClassification,
                      DataCollatorWithPadding, group_by_length=True, same hyperparameters
  hf-trainer-random   the same with group_by_length=False (random batches; slow, so
                      only with --with-random or --impls)

The shared hyperparameters default to the Trainer's own defaults (lr 5e-5, batch 32,
warmup ratio 0, weight decay 0, max_grad_norm 1, linear decay), 1 epoch, max_length 128,
seed 42. Trainer regression (num_labels=1) trains on the raw 0..5 scores; BertRegressor
standardises its targets inside. Spearman does not care about the scale.

Usage
  python benchmarks/bench_finetune.py --quick          # smoke test, ~5 min
  python benchmarks/bench_finetune.py                  # full (~45 min, idle machine)
  python benchmarks/bench_finetune.py --with-random    # + Trainer random batches (+25 min)
  python benchmarks/bench_finetune.py --tasks sst2 --impls bertkit,hf-trainer-grouped
  python benchmarks/bench_finetune.py --summarize benchmarks/results/finetune.jsonl
  python benchmarks/bench_finetune.py --task sst2 --impl bertkit --quick   # one run, JSON to stdout

Each run records: wall time of the whole fit (tokenisation + model load + training
loop) and of its parts, real tokens/s (non-pad tokens the training loop processed /
training-loop seconds), padded tokens, dev metric, the training-loss curve per
logging window, peak RSS, versions, and the CPU that other processes used during the
training loop (foreign_cpu_cores; above ~0.05 the timing is contended).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HERE = Path(__file__).resolve().parent
TASKS = ("sst2", "stsb")
IMPLS = ("bertkit", "bertkit-default", "hf-trainer-grouped", "hf-trainer-random")
#: Run order within one repeat (alternating bertkit / Trainer); reversed on odd repeats.
DEFAULT_IMPLS = ("bertkit", "hf-trainer-grouped", "bertkit-default")
BASELINE = "hf-trainer-grouped"
QUICK = {"train_limit": 2000, "stsb_train_limit": 1000, "logging_steps": 5, "wait_idle": 0.0}
FULL = {"train_limit": None, "stsb_train_limit": None, "logging_steps": 50, "wait_idle": 900.0}
#: Measured on this machine before bertkit existed (see shared/bench-peers/README.md):
#: Trainer, all-MiniLM-L6-v2, SST-2 full train, 1 epoch, batch 32, lr 5e-5.
PEERS = {
    ("sst2", "hf-trainer-random"): {"fit_s": 1532, "metric": 0.889},
    ("sst2", "hf-trainer-grouped"): {"fit_s": 570, "metric": 0.893},
}


@dataclasses.dataclass
class Hyper:
    learning_rate: float
    batch_size: int
    epochs: int
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    max_length: int
    seed: int
    precision: str = "fp32"


# ===================================================================== one run (child process)
class Recorder:
    """What the instrumented training loop saw."""

    def __init__(self):
        self.real_tokens = 0
        self.padded_tokens = 0
        self.batches = 0
        self.counting = False
        self.losses: list[float] = []  # per batch (bertkit)
        self.loss_times: list[float] = []
        self.curve: list[list] = []  # [step, loss, seconds since loop start, lr?]
        self.t_loop0 = 0.0
        self.extra: dict = {}

    def count(self, attention_mask) -> None:
        if self.counting:
            self.real_tokens += int(attention_mask.sum())
            self.padded_tokens += int(attention_mask.numel())
            self.batches += 1


def _windows(losses: list[float], times: list[float], k: int) -> list[list]:
    """Mean loss over each full window of ``k`` steps: [end step, mean loss, seconds]."""
    out = []
    for end in range(k, len(losses) + 1, k):
        out.append([end, round(statistics.fmean(losses[end - k:end]), 4), round(times[end - 1], 2)])
    return out


def _metric(task: str, pred, gold) -> dict:
    import numpy as np

    pred, gold = np.asarray(pred), np.asarray(gold)
    if task == "sst2":
        return {"metric_name": "accuracy", "metric": round(float((pred == gold).mean()), 4),
                "pred_positive_rate": round(float((pred == 1).mean()), 4)}
    from scipy.stats import pearsonr, spearmanr

    return {"metric_name": "spearman", "metric": round(float(spearmanr(pred, gold).statistic), 4),
            "pearson": round(float(pearsonr(pred, gold).statistic), 4)}


def run_bertkit(task: str, impl: str, data: dict, hp: Hyper, logging_steps: int) -> dict:
    """bertkit estimator; the training loop is instrumented from outside (no bertkit edits):
    ``bertkit.estimators._fitting.fit`` is wrapped so its ``loss_fn`` records each batch
    loss and the training data's ``collate`` counts real and padded tokens; the
    estimator's ``_encode``/``_new_model`` are timed."""
    import bertkit
    from bertkit.estimators import _base, _fitting

    rec = Recorder()
    timers = {"encode_s": 0.0, "tokenizer_load_s": 0.0, "model_load_s": 0.0}

    def timed(name, method):
        def wrapper(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                timers[name] += time.perf_counter() - t0
        return wrapper

    base = _base.BertEstimatorBase
    base._encode = timed("encode_s", base._encode)
    base._load_tokenizer = timed("tokenizer_load_s", base._load_tokenizer)
    base._new_model = timed("model_load_s", base._new_model)

    original_fit = _fitting.fit
    loop = {}

    def instrumented_fit(model, data_, targets, loss_fn, settings, **kwargs):
        rec.extra["train_settings"] = dataclasses.asdict(settings)
        rec.extra["attention"] = getattr(getattr(model, "bert", model), "attention_name", None)
        collate = data_.collate

        def counting_collate(rows, pad_id, device="cpu"):
            batch = collate(rows, pad_id, device)
            rec.count(batch["attention_mask"])
            return batch

        def recording_loss(outputs, target, weight):
            loss = loss_fn(outputs, target, weight)
            rec.losses.append(float(loss.detach()))
            rec.loss_times.append(time.perf_counter() - rec.t_loop0)
            return loss

        data_.collate = counting_collate
        rec.counting = True
        watch = common.CpuWatch()
        with watch:
            rec.t_loop0 = time.perf_counter()
            try:
                result = original_fit(model, data_, targets, recording_loss, settings, **kwargs)
            finally:
                rec.counting = False
        loop["watch"] = watch
        loop["n_steps"] = result.n_steps
        return result

    _fitting.fit = instrumented_fit

    cls = bertkit.BertClassifier if task == "sst2" else bertkit.BertRegressor
    if impl == "bertkit":
        est = cls(max_length=hp.max_length, batch_size=hp.batch_size, learning_rate=hp.learning_rate,
                  n_epochs=hp.epochs, weight_decay=hp.weight_decay, warmup_ratio=hp.warmup_ratio,
                  max_grad_norm=hp.max_grad_norm, random_state=hp.seed, precision=hp.precision)
    else:  # bertkit-default
        est = cls(n_epochs=hp.epochs, random_state=hp.seed, precision=hp.precision)

    with common.CpuWatch() as fit_watch:
        est.fit(data["X_train"], data["y_train"])
    fit_timers = dict(timers)
    peak_fit = common.peak_rss_mb()
    t0 = time.perf_counter()
    pred = est.predict(data["X_dev"])
    eval_s = time.perf_counter() - t0

    train = loop["watch"]
    params = {k: v for k, v in est.get_params().items() if k not in ("verbose",)}
    return {
        "timings": {
            "fit_s": round(fit_watch.wall, 3),
            "train_s": round(train.wall, 3),
            "prep_s": round(fit_watch.wall - train.wall, 3),
            "tokenize_s": round(fit_timers["encode_s"] + fit_timers["tokenizer_load_s"], 3),
            "model_load_s": round(fit_timers["model_load_s"], 3),
            "eval_s": round(eval_s, 3),
        },
        "train_cpu": train.summary(),
        "fit_cpu": fit_watch.summary(),
        "real_tokens": rec.real_tokens,
        "padded_tokens": rec.padded_tokens,
        "batches": rec.batches,
        "optimizer_steps": loop["n_steps"],
        "train_loss_mean": round(float(est.history_[-1]["train_loss"]), 4),
        "loss_curve": _windows(rec.losses, rec.loss_times, logging_steps),
        "loss_first_batch": round(rec.losses[0], 4) if rec.losses else None,
        "peak_rss_fit_mb": round(peak_fit, 1),
        "impl_settings": {"estimator": type(est).__name__, "params": params, **rec.extra},
        **_metric(task, pred, data["y_dev"]),
    }


def run_hf(task: str, impl: str, data: dict, hp: Hyper, logging_steps: int, eval_batch: int) -> dict:
    """transformers' Trainer on a plain list of tokenised examples (no `datasets`)."""
    import numpy as np
    import torch
    import transformers
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    transformers.logging.set_verbosity_warning()
    model_dir = common.default_model_dir()
    pairs = task == "stsb"
    rec = Recorder()

    t_fit0 = time.perf_counter()
    fit_watch = common.CpuWatch().__enter__()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def encode(X, y):
        if pairs:
            enc = tokenizer([p[0] for p in X], [p[1] for p in X], truncation=True, max_length=hp.max_length)
        else:
            enc = tokenizer(list(X), truncation=True, max_length=hp.max_length)
        keys = list(enc.keys())
        return [{**{k: enc[k][i] for k in keys}, "labels": y[i]} for i in range(len(X))]

    train_ds = encode(data["X_train"], data["y_train"])
    tokenize_s = time.perf_counter() - t_fit0

    t0 = time.perf_counter()
    set_seed(hp.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=1 if pairs else 2, dtype=torch.float32)
    model_load_s = time.perf_counter() - t0

    class CountingCollator:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, features):
            batch = self.inner(features)
            rec.count(batch["attention_mask"])
            return batch

    class LossLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                rec.curve.append([state.global_step, round(float(logs["loss"]), 4),
                                  round(time.perf_counter() - rec.t_loop0, 2)])

    outdir = tempfile.mkdtemp(prefix="bench-ft-")
    args = TrainingArguments(
        output_dir=outdir,
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=eval_batch,
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        weight_decay=hp.weight_decay,
        warmup_ratio=hp.warmup_ratio,
        max_grad_norm=hp.max_grad_norm,
        lr_scheduler_type="linear",
        group_by_length=impl == "hf-trainer-grouped",
        logging_strategy="steps",
        logging_steps=logging_steps,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=hp.seed,
        bf16=hp.precision == "bf16",
        use_cpu=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_ds,
                      data_collator=CountingCollator(DataCollatorWithPadding(tokenizer)),
                      callbacks=[LossLog()])
    rec.counting = True
    with common.CpuWatch() as train:
        rec.t_loop0 = time.perf_counter()
        out = trainer.train()
    rec.counting = False
    fit_watch.__exit__(None, None, None)
    peak_fit = common.peak_rss_mb()

    t0 = time.perf_counter()
    dev_ds = encode(data["X_dev"], data["y_dev"])
    predicted = trainer.predict(dev_ds)
    logits = predicted.predictions
    pred = logits.reshape(-1) if pairs else logits.argmax(axis=1)
    eval_s = time.perf_counter() - t0
    # With group_by_length=True, transformers (since PR #33514) also length-groups the
    # evaluation sampler, randomly: predictions come back in a shuffled order. Score them
    # against the label_ids gathered in that same order, not against y_dev.
    gold = predicted.label_ids.reshape(-1)
    if not np.allclose(np.sort(gold), np.sort(np.asarray(data["y_dev"], dtype=np.float64)), atol=1e-5):
        raise RuntimeError("Trainer.predict returned label_ids that are not the dev labels")

    return {
        "timings": {
            "fit_s": round(fit_watch.wall, 3),
            "train_s": round(train.wall, 3),
            "prep_s": round(fit_watch.wall - train.wall, 3),
            "tokenize_s": round(tokenize_s, 3),
            "model_load_s": round(model_load_s, 3),
            "eval_s": round(eval_s, 3),
            "trainer_train_runtime_s": round(float(out.metrics.get("train_runtime", float("nan"))), 3),
        },
        "train_cpu": train.summary(),
        "fit_cpu": fit_watch.summary(),
        "real_tokens": rec.real_tokens,
        "padded_tokens": rec.padded_tokens,
        "batches": rec.batches,
        "optimizer_steps": int(trainer.state.global_step),
        "train_loss_mean": round(float(out.training_loss), 4),
        "loss_curve": rec.curve,
        "peak_rss_fit_mb": round(peak_fit, 1),
        "impl_settings": {
            "group_by_length": args.group_by_length,
            "optim": str(getattr(args.optim, "value", args.optim)),
            "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
            "warmup_steps": args.get_warmup_steps(int(trainer.state.max_steps)),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "problem_type": model.config.problem_type,
            "regression_targets": "raw 0..5 scores (not standardised)" if pairs else None,
            "dataset": "list of dicts from one fast-tokenizer call (no `datasets`)",
            "eval_order": "shuffled (length-grouped)" if args.group_by_length else "sequential",
        },
        **_metric(task, pred, gold),
    }


def run_one(a) -> dict:
    """One configuration in this process; returns its record."""
    common.set_threads(a.threads)
    import torch

    hp = hyper(a, a.task)
    t0 = time.perf_counter()
    if a.task == "sst2":
        X_train, y_train = common.load_sst2("train", a.train_limit, seed=0)
        X_dev, y_dev = common.load_sst2("dev")
    else:
        X_train, y_train = common.load_stsb("train", a.stsb_train_limit, seed=0)
        X_dev, y_dev = common.load_stsb("dev")
    data = {"X_train": X_train, "y_train": y_train, "X_dev": X_dev, "y_dev": y_dev}
    load_data_s = time.perf_counter() - t0

    with common.CpuWatch() as whole:
        if a.impl.startswith("bertkit"):
            result = run_bertkit(a.task, a.impl, data, hp, a.logging_steps)
        else:
            result = run_hf(a.task, a.impl, data, hp, a.logging_steps, a.eval_batch_size)

    timings = result.pop("timings")
    timings["load_data_s"] = round(load_data_s, 3)
    train_s, fit_s = timings["train_s"], timings["fit_s"]
    real, padded = result["real_tokens"], result["padded_tokens"]
    return {
        "bench": "finetune",
        "task": a.task,
        "impl": a.impl,
        "quick": bool(a.quick),
        "repeat": a.repeat,
        "n_train": len(X_train),
        "n_dev": len(X_dev),
        "hyperparameters": dataclasses.asdict(hp),
        "logging_steps": a.logging_steps,
        "threads": torch.get_num_threads(),
        **timings,
        "real_tokens_per_s": round(real / train_s, 1),
        "real_tokens_per_s_fit": round(real / fit_s, 1),
        "padded_tokens_per_s": round(padded / train_s, 1),
        "padded_over_real": round(padded / max(real, 1), 3),
        "examples_per_s": round(len(X_train) * hp.epochs / train_s, 2),
        "foreign_cpu_cores": result["train_cpu"]["foreign_cpu_cores"],
        "own_cpu_cores": result["train_cpu"]["own_cpu_cores"],
        "foreign_cpu_cores_process": round(whole.foreign_cores, 2),
        "peak_rss_mb": round(common.peak_rss_mb(), 1),
        **result,
        "versions": common.versions(),
        "machine": common.machine(),
    }


# ===================================================================== driver
def hyper(a, task: str) -> Hyper:
    epochs = a.stsb_epochs if (task == "stsb" and a.stsb_epochs is not None) else a.epochs
    return Hyper(learning_rate=a.lr, batch_size=a.batch_size, epochs=epochs,
                 warmup_ratio=a.warmup_ratio, weight_decay=a.weight_decay,
                 max_grad_norm=a.max_grad_norm, max_length=a.max_length, seed=a.seed,
                 precision=a.precision)


def child_args(a, task: str, impl: str, repeat: int, result_file: str) -> list[str]:
    args = [sys.executable, str(Path(__file__).resolve()), "--task", task, "--impl", impl,
            "--repeat", str(repeat), "--result-file", result_file,
            "--epochs", str(a.epochs), "--lr", repr(a.lr), "--batch-size", str(a.batch_size),
            "--warmup-ratio", repr(a.warmup_ratio), "--weight-decay", repr(a.weight_decay),
            "--max-grad-norm", repr(a.max_grad_norm), "--max-length", str(a.max_length),
            "--seed", str(a.seed), "--logging-steps", str(a.logging_steps),
            "--threads", str(a.threads), "--eval-batch-size", str(a.eval_batch_size),
            "--precision", a.precision]
    if a.stsb_epochs is not None:
        args += ["--stsb-epochs", str(a.stsb_epochs)]
    if a.train_limit is not None:
        args += ["--train-limit", str(a.train_limit)]
    if a.stsb_train_limit is not None:
        args += ["--stsb-train-limit", str(a.stsb_train_limit)]
    if a.quick:
        args.append("--quick")
    return args


def plan(a) -> list[tuple[str, str, int]]:
    impls = [i.strip() for i in a.impls.split(",")] if a.impls else list(DEFAULT_IMPLS)
    if a.with_random and "hf-trainer-random" not in impls:
        impls.append("hf-trainer-random")
    return common.alternating([t.strip() for t in a.tasks.split(",")], impls, a.repeats,
                              known_tasks=TASKS, known_impls=IMPLS)


def drive(a) -> list[dict]:
    runs = plan(a)
    for task in dict.fromkeys(t for t, _, _ in runs):
        n = a.train_limit if task == "sst2" else a.stsb_train_limit
        print(f"#   {task}: train {'all' if n is None else n}, {hyper(a, task)}", flush=True)

    def describe(record: dict) -> str:
        return (f"fit {record['fit_s']:.1f} s (train {record['train_s']:.1f} s), "
                f"{record['real_tokens_per_s']:.0f} real tok/s, {record['metric_name']} "
                f"{record['metric']:.4f}, foreign {record['foreign_cpu_cores']:.2f} cores")

    return common.drive(runs, lambda t, i, r, f: child_args(a, t, i, r, f), out=a.out, bench="finetune",
                        threads=a.threads, max_wait_s=a.wait_idle, idle_threshold=a.idle_threshold,
                        quick=a.quick, describe=describe)


# ===================================================================== table
def _median(records: list[dict], key: str) -> float:
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def table(records: list[dict]) -> str:
    ok = [r for r in records if r.get("bench") == "finetune" and "error" not in r]
    if not ok:
        return "(no results)"
    groups: dict[tuple, list[dict]] = {}
    for r in ok:
        groups.setdefault((r["task"], r["impl"], r["n_train"]), []).append(r)
    cols = ("task", "impl", "n_train", "runs", "tok s", "load s", "train s", "fit s", "real tok/s",
            "pad/real", "metric", "loss end", "RSS MB", "foreign")
    rows = []
    for (task, impl, n), rs in groups.items():
        last_loss = [r["loss_curve"][-1][1] for r in rs if r.get("loss_curve")]
        rows.append((task, impl, str(n), str(len(rs)),
                     f"{_median(rs, 'tokenize_s'):.1f}", f"{_median(rs, 'model_load_s'):.1f}",
                     f"{_median(rs, 'train_s'):.1f}", f"{_median(rs, 'fit_s'):.1f}",
                     f"{_median(rs, 'real_tokens_per_s'):,.0f}", f"{_median(rs, 'padded_over_real'):.2f}",
                     f"{rs[0]['metric_name'][:4]} {_median(rs, 'metric'):.4f}",
                     f"{statistics.median(last_loss):.3f}" if last_loss else "-",
                     f"{_median(rs, 'peak_rss_mb'):,.0f}", f"{max(r['foreign_cpu_cores'] for r in rs):.2f}"))
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]

    lines.append("")
    lines.append(f"Ratios against {BASELINE} (median over runs; wall-time ratio < 1 = faster than "
                 f"the Trainer; tokens/s ratio > 1 = more real tokens per second):")
    for (task, impl, n), rs in groups.items():
        base = groups.get((task, BASELINE, n))
        if impl == BASELINE or not base:
            continue
        lines.append(
            f"  {task} {impl}: fit {_median(rs, 'fit_s') / _median(base, 'fit_s'):.2f}x, "
            f"train loop {_median(rs, 'train_s') / _median(base, 'train_s'):.2f}x, "
            f"real tok/s {_median(rs, 'real_tokens_per_s') / _median(base, 'real_tokens_per_s'):.2f}x, "
            f"padded tok/s {_median(rs, 'padded_tokens_per_s') / _median(base, 'padded_tokens_per_s'):.2f}x, "
            f"{rs[0]['metric_name']} {_median(rs, 'metric') - _median(base, 'metric'):+.4f}")
    peers = [(k, v) for k, v in PEERS.items() if any(g[0] == k[0] and g[2] == 67349 for g in groups)]
    if peers:
        lines.append("Peer numbers measured earlier on this machine (Trainer, full SST-2, 1 epoch): "
                     + "; ".join(f"{impl} {v['fit_s']} s, acc {v['metric']}" for (_, impl), v in peers))
    contended = [r for r in ok if r["foreign_cpu_cores"] > 0.05]
    if contended:
        lines.append(f"WARNING: {len(contended)} of {len(ok)} runs were contended (other processes used "
                     f"> 0.05 cores during training, up to {max(r['foreign_cpu_cores'] for r in ok):.2f}); "
                     f"their timings are not comparable.")
    return "\n".join(lines)


# ===================================================================== CLI
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 2,000 SST-2 sentences, 1,000 STS pairs, logging every 5 steps, "
                        "no idle wait; results to benchmarks/results/finetune_quick.jsonl")
    p.add_argument("--tasks", default="sst2,stsb", help="comma list of: sst2, stsb")
    p.add_argument("--impls", default=None,
                   help=f"comma list, run in this order (default {','.join(DEFAULT_IMPLS)}); "
                        f"choices {', '.join(IMPLS)}")
    p.add_argument("--with-random", action="store_true", help="also run hf-trainer-random (~25 min on SST-2)")
    p.add_argument("--repeats", type=int, default=1, help="alternating rounds (order reversed every other)")
    p.add_argument("--out", default=None, help="JSON lines (appended); default benchmarks/results/finetune.jsonl")
    p.add_argument("--summarize", nargs="+", metavar="JSONL", help="only print the table of these files")
    p.add_argument("--train-limit", type=int, default=None, help="SST-2 train sentences (fixed-seed subset)")
    p.add_argument("--stsb-train-limit", type=int, default=None, help="STS-B train pairs (fixed-seed subset)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--stsb-epochs", type=int, default=None, help="epochs on STS-B (default --epochs)")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="default: the Trainer's (0)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="default: the Trainer's (0)")
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="both sides: bf16 autocast (bertkit precision='bf16', Trainer bf16=True); "
                        "fast on CPUs with AMX")
    p.add_argument("--logging-steps", type=int, default=None, help="loss-curve window (default 50; quick 5)")
    p.add_argument("--eval-batch-size", type=int, default=64, help="Trainer's dev-set batch size")
    p.add_argument("--threads", type=int, default=common.THREADS)
    p.add_argument("--wait-idle", type=float, default=None,
                   help="before each run wait up to this many seconds for an idle machine "
                        "(default 900; quick 0 = only measure)")
    p.add_argument("--idle-threshold", type=float, default=0.15, help="cores other processes may use")
    # one run (what the driver starts)
    p.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)
    p.add_argument("--impl", choices=IMPLS, help="run this one configuration in this process "
                   "(with --task) and print its JSON line")
    p.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    defaults = QUICK if a.quick else FULL
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if a.out is None:
        a.out = str(HERE / "results" / ("finetune_quick.jsonl" if a.quick else "finetune.jsonl"))
    if a.impl and not a.task:
        p.error("--impl needs --task")
    return a


def main(argv=None) -> None:
    a = parse(argv)
    common.main(a, run_one=run_one, drive=lambda: drive(a), table=table)


if __name__ == "__main__":
    main()
