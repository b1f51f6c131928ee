#!/usr/bin/env python
"""GPU check (issue 5): bertkit against transformers and sentence-transformers on CUDA.

One prepared run for a lent GPU machine, which can fetch nothing and takes at most 64 MiB
of files along. So it runs in two steps:

1. Here (the default model and ../shared/data installed), pack what the run needs into
   an ignored folder: the default model with its weights stored in fp16 (45 MB; both
   sides load the same rounded weights and compute in fp32 or their own half precision),
   its tokenizer, SST-2 train/dev and 256 WikiText-2 test paragraphs of 100-512 tokens:

       python benchmarks/bench_gpu.py --make-pack .gpu

2. There (its python3 has torch with CUDA, transformers, sentence-transformers and
   bertkit's other dependencies), from the repository root:

       PYTHONPATH=. python3 benchmarks/bench_gpu.py --pack .gpu --out $OUT/gpu.jsonl

   with ``carry: [".gpu"]`` in the device call. About 4 minutes on an H200.

Parts (``--parts``, default all):
  parity  bertkit's encoder against transformers' (sdpa) on 256 SST-2 sentences: fp32
          hidden states (max abs difference over real tokens) and mean-pooled cosine;
          then each side in bf16 and fp16 against its own fp32 (minimum cosine).
  embed   embedding throughput, texts/s (batch 32; SST-2 4,096 at max_length 128 and the
          256 long paragraphs at 512): bertkit BertEmbedder in fp32/bf16/fp16 against
          transformers sdpa (length-sorted and unsorted batches) and sentence-transformers
          ``encode``, each in fp32 and in fp16/bf16 weights. Best of 3 timed passes after
          one warm-up, tokenisation included, GPU synchronised; one process, configurations
          in turn.
  train   fine-tuning SST-2 train (67,349 sentences) for 1 epoch, batch 32, lr 5e-5,
          warm-up 0.1, weight decay 0.01, max_length 128, seed 0: BertClassifier with
          precision bf16 and fp16 against transformers' Trainer with bf16/fp16 autocast and
          ``group_by_length=True``; real tokens/s, mean training loss and dev accuracy.

Every configuration writes one JSON line (``--out``); a table and ratios are printed at the
end. ``--quick`` shrinks every corpus (a smoke test, also on CPU with ``--device cpu``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402  (stdlib only: it runs on the GPU machine too)

BATCH = 32


# ===================================================================== the pack (here)
def make_pack(folder: Path) -> None:
    """Write the model (fp16 weights), tokenizer files and corpora the GPU run reads."""
    import shutil

    import torch
    from safetensors.torch import save_file

    from bertkit.checkpoint import read_state_dict

    source = Path(common.default_model_dir())
    model = folder / "model"
    model.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, model / name)
    state = {k: v.to(torch.float16).contiguous() for k, v in read_state_dict(source).items()}
    save_file(state, str(model / "model.safetensors"), metadata={"format": "pt"})
    data = common.data_dir()
    for split in ("train", "dev"):
        shutil.copy(data / "sst2" / f"{split}.tsv", folder / f"sst2_{split}.tsv")
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    paragraphs = []
    for line in (data / "wikitext2_raw" / "wiki.test.raw").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("=") and 100 <= len(tokenizer.encode(line).ids) <= 512:
            paragraphs.append(line)
            if len(paragraphs) == 256:
                break
    (folder / "wiki_long.txt").write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"packed {folder} ({size / 2**20:.1f} MiB): model in fp16, SST-2, {len(paragraphs)} long paragraphs")


def read_sst2(path: Path, limit: int | None = None) -> tuple[list[str], list[int]]:
    """The first ``limit`` (all with None) sentences and labels of a packed SST-2 file."""
    texts, labels = common.read_sst2_tsv(path)
    return texts[:limit], labels[:limit]


# ===================================================================== helpers
def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_of(fn, device: str, passes: int = 3) -> tuple[float, object]:
    """Seconds of the fastest of ``passes`` timed calls, after one warm-up call."""
    result = fn()
    times = []
    for _ in range(passes):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times), result


def cosine_rows(a, b):
    import numpy as np

    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def half_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


# ===================================================================== embedders
def bertkit_embedder(model_dir: str, max_length: int, precision: str, device: str):
    import bertkit
    from bertkit.estimators._base import CACHES

    est = bertkit.BertEmbedder(model=model_dir, pooling="mean", normalize=False, max_length=max_length,
                               batch_size=BATCH, precision=precision, device=device).fit()

    def embed(texts):
        CACHES.texts.clear()  # tokenise every pass, as the peers do
        return est.transform(texts)

    return embed


def hf_embedder(model_dir: str, max_length: int, dtype: str, device: str, sort: bool):
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="sdpa", dtype=half_dtype(dtype)).to(device).eval()

    def embed(texts):
        order = np.argsort([-len(t) for t in texts], kind="stable") if sort else np.arange(len(texts))
        parts = []
        with torch.inference_mode():
            for s in range(0, len(texts), BATCH):
                batch = [texts[i] for i in order[s:s + BATCH]]
                enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
                hidden = model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).float()
                parts.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).cpu().numpy())
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        return out

    return embed


def st_embedder(model_dir: str, max_length: int, dtype: str, device: str):
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_dir, device=device, model_kwargs={"dtype": half_dtype(dtype)})
    st.max_seq_length = max_length

    def embed(texts):
        out = st.encode(texts, batch_size=BATCH, convert_to_tensor=True, show_progress_bar=False)
        return out.to(torch.float32).cpu().numpy()

    return embed


# ===================================================================== parts
def part_parity(a, write) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    import bertkit

    texts, _ = read_sst2(a.pack / "sst2_train.tsv", 64 if a.quick else 256)
    model_dir = str(a.pack / "model")
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt").to(a.device)
    ours = bertkit.load_encoder(model_dir).to(a.device).eval()
    theirs = AutoModel.from_pretrained(model_dir, attn_implementation="sdpa", dtype=torch.float32).to(a.device).eval()
    with torch.inference_mode():
        h_ours = ours(**enc).last_hidden_state
        h_theirs = theirs(**enc).last_hidden_state
    real = enc["attention_mask"].bool()
    record = {"part": "parity", "n_texts": len(texts),
              "fp32_max_abs_diff": float((h_ours - h_theirs)[real].abs().max()),
              "fp32_min_cosine": float(cosine_rows(_mean(h_ours, enc), _mean(h_theirs, enc)).min())}
    reference = bertkit_embedder(model_dir, 128, "fp32", a.device)(texts)
    for precision in ("bf16", "fp16"):
        half = bertkit_embedder(model_dir, 128, precision, a.device)(texts)
        record[f"bertkit_{precision}_min_cosine_to_fp32"] = float(cosine_rows(half, reference).min())
        record[f"bertkit_{precision}_vs_transformers_fp32_min_cosine"] = float(
            cosine_rows(half, _mean(h_theirs, enc)).min())
        peer = hf_embedder(model_dir, 128, precision, a.device, sort=True)(texts)
        record[f"transformers_{precision}_min_cosine_to_fp32"] = float(cosine_rows(peer, _mean(h_theirs, enc)).min())
    write(record)


def _mean(hidden, enc):
    mask = enc["attention_mask"].unsqueeze(-1).float()
    return ((hidden.float() * mask).sum(1) / mask.sum(1)).cpu().numpy()


def part_embed(a, write) -> None:
    model_dir = str(a.pack / "model")
    sst2, _ = read_sst2(a.pack / "sst2_train.tsv", 512 if a.quick else 4096)
    wiki = (a.pack / "wiki_long.txt").read_text(encoding="utf-8").splitlines()[: 32 if a.quick else 256]
    half = "bf16" if a.half == "bf16" else "fp16"
    configs = [
        ("bertkit", "fp32", lambda ml: bertkit_embedder(model_dir, ml, "fp32", a.device)),
        ("bertkit", "bf16", lambda ml: bertkit_embedder(model_dir, ml, "bf16", a.device)),
        ("bertkit", "fp16", lambda ml: bertkit_embedder(model_dir, ml, "fp16", a.device)),
        ("hf-sdpa-sorted", "fp32", lambda ml: hf_embedder(model_dir, ml, "fp32", a.device, sort=True)),
        ("hf-sdpa-sorted", "bf16", lambda ml: hf_embedder(model_dir, ml, "bf16", a.device, sort=True)),
        ("hf-sdpa-sorted", "fp16", lambda ml: hf_embedder(model_dir, ml, "fp16", a.device, sort=True)),
        ("hf-sdpa", half, lambda ml: hf_embedder(model_dir, ml, half, a.device, sort=False)),
        ("st", "fp32", lambda ml: st_embedder(model_dir, ml, "fp32", a.device)),
        ("st", "fp16", lambda ml: st_embedder(model_dir, ml, "fp16", a.device)),
        ("st", "bf16", lambda ml: st_embedder(model_dir, ml, "bf16", a.device)),
    ]
    for corpus, texts, max_length in (("sst2", sst2, 128), ("wiki-long", wiki, 512)):
        for impl, dtype, make in configs:
            record = {"part": "embed", "corpus": corpus, "impl": impl, "dtype": dtype, "n_texts": len(texts),
                      "max_length": max_length, "batch_size": BATCH}
            try:
                embed = make(max_length)
                seconds, _ = best_of(lambda: embed(texts), a.device)  # noqa: B023 (called at once)
                record.update(seconds=seconds, texts_per_s=len(texts) / seconds)
            except Exception as err:  # a peer missing or failing there is recorded, not fatal
                record["error"] = f"{type(err).__name__}: {err}"[:300]
            write(record)
            _free(a.device)


def part_train(a, write) -> None:
    import bertkit

    model_dir = str(a.pack / "model")
    train, y_train = read_sst2(a.pack / "sst2_train.tsv", 2000 if a.quick else None)
    dev, y_dev = read_sst2(a.pack / "sst2_dev.tsv", 200 if a.quick else None)
    hyper = dict(learning_rate=5e-5, batch_size=BATCH, epochs=1, max_length=128, warmup_ratio=0.1,
                 weight_decay=0.01, seed=0)
    real_tokens = _real_tokens(model_dir, train, hyper["max_length"])
    for precision in a.train_precisions:
        for impl in ("bertkit", "hf-trainer"):
            record = {"part": "train", "impl": impl, "precision": precision, "n_train": len(train),
                      "real_tokens": real_tokens, **hyper}
            try:
                if impl == "bertkit":
                    clf = bertkit.BertClassifier(
                        model=model_dir, learning_rate=hyper["learning_rate"], batch_size=BATCH, n_epochs=1,
                        max_length=hyper["max_length"], warmup_ratio=0.1, weight_decay=0.01, random_state=0,
                        device=a.device, precision=precision)
                    sync(a.device)
                    start = time.perf_counter()
                    clf.fit(train, y_train)
                    sync(a.device)
                    fit_s = time.perf_counter() - start
                    record.update(fit_s=fit_s, train_loss=clf.history_[-1]["train_loss"],
                                  dev_accuracy=float(clf.score(dev, y_dev)))
                else:
                    record.update(_trainer_run(model_dir, train, y_train, dev, y_dev, hyper, precision, a.device))
                record["real_tokens_per_s"] = real_tokens / record["fit_s"]
            except Exception as err:
                record["error"] = f"{type(err).__name__}: {err}"[:300]
            write(record)
            _free(a.device)


def _real_tokens(model_dir: str, texts: list[str], max_length: int) -> int:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return sum(len(ids) for ids in tok(texts, truncation=True, max_length=max_length)["input_ids"])


def _trainer_run(model_dir, train, y_train, dev, y_dev, hyper, precision, device) -> dict:
    """transformers' Trainer: tokenizer load, features, model load and ``train()`` are timed."""
    import inspect
    import tempfile

    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    sync(device)
    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(train, truncation=True, max_length=hyper["max_length"])
    rows = [{"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
             "attention_mask": enc["attention_mask"][i], "labels": y_train[i]} for i in range(len(train))]
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, attn_implementation="sdpa", dtype=torch.float32)
    accepted = inspect.signature(TrainingArguments).parameters
    # transformers moved length grouping to train_sampling_strategy in some 5.x releases
    grouping = ({"group_by_length": True} if "group_by_length" in accepted
                else {"train_sampling_strategy": "group_by_length"})
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=hyper["batch_size"], learning_rate=hyper["learning_rate"],
            num_train_epochs=hyper["epochs"], warmup_ratio=hyper["warmup_ratio"], weight_decay=hyper["weight_decay"],
            lr_scheduler_type="linear", max_grad_norm=1.0, seed=hyper["seed"], **grouping,
            bf16=precision == "bf16", fp16=precision == "fp16", logging_strategy="no", save_strategy="no",
            report_to=[], dataloader_num_workers=0, use_cpu=not device.startswith("cuda"),
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tok))
        result = trainer.train()
    sync(device)
    fit_s = time.perf_counter() - start
    model.eval()
    correct = 0
    with torch.inference_mode():
        for s in range(0, len(dev), 256):
            batch = tok(dev[s:s + 256], padding=True, truncation=True, max_length=hyper["max_length"],
                        return_tensors="pt").to(model.device)
            correct += int((model(**batch).logits.argmax(-1).cpu().numpy() == np.asarray(y_dev[s:s + 256])).sum())
    return {"fit_s": fit_s, "train_loss": float(result.training_loss), "dev_accuracy": correct / len(dev),
            "trainer_grouping": grouping}


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# ===================================================================== report
def report(records: list[dict]) -> str:
    lines = []
    for r in records:
        if r["part"] == "parity":
            lines.append("parity: " + ", ".join(f"{k} {v:.6g}" for k, v in r.items() if isinstance(v, float)))
    embeds = [r for r in records if r["part"] == "embed" and "texts_per_s" in r]
    for corpus in dict.fromkeys(r["corpus"] for r in embeds):
        rows = [r for r in embeds if r["corpus"] == corpus]
        peers = [r for r in rows if r["impl"] != "bertkit"]
        best_peer = max(peers, key=lambda r: r["texts_per_s"], default=None)
        lines.append(f"embed {corpus}: " + "; ".join(f"{r['impl']} {r['dtype']} {r['texts_per_s']:.0f}/s" for r in rows))
        for r in rows:
            if r["impl"] == "bertkit" and best_peer:
                same = max((p for p in peers if p["dtype"] == r["dtype"]), key=lambda p: p["texts_per_s"], default=None)
                lines.append(f"  bertkit {r['dtype']}: {r['texts_per_s'] / best_peer['texts_per_s']:.2f}x the fastest "
                             f"peer ({best_peer['impl']} {best_peer['dtype']})"
                             + (f", {r['texts_per_s'] / same['texts_per_s']:.2f}x the fastest in {r['dtype']} "
                                f"({same['impl']})" if same else ""))
    trains = [r for r in records if r["part"] == "train" and "fit_s" in r]
    for precision in dict.fromkeys(r["precision"] for r in trains):
        pair = {r["impl"]: r for r in trains if r["precision"] == precision}
        for r in pair.values():
            lines.append(f"train {precision} {r['impl']}: fit {r['fit_s']:.1f} s, {r['real_tokens_per_s']:.0f} real "
                         f"tokens/s, loss {r['train_loss']:.4f}, dev accuracy {r['dev_accuracy']:.4f}")
        if len(pair) == 2:
            lines.append(f"  bertkit/Trainer real tokens/s: "
                         f"{pair['bertkit']['real_tokens_per_s'] / pair['hf-trainer']['real_tokens_per_s']:.2f}x")
    lines += [f"error: {r}" for r in records if "error" in r]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--make-pack", type=Path, metavar="DIR", help="write the pack here and stop")
    p.add_argument("--pack", type=Path, default=Path(".gpu"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--parts", default="parity,embed,train")
    p.add_argument("--train-precisions", default="bf16,fp16")
    p.add_argument("--half", default="fp16", choices=("fp16", "bf16"), help="dtype of the unsorted peer")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results" / "gpu.jsonl")
    a = p.parse_args(argv)
    if a.make_pack:
        make_pack(a.make_pack)
        return
    a.train_precisions = [x for x in a.train_precisions.split(",") if x]
    import torch

    device_name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"
    versions = {"torch": torch.__version__}
    for name in ("transformers", "sentence_transformers"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    records = []
    a.out.parent.mkdir(parents=True, exist_ok=True)

    def write(record: dict) -> None:
        record.update(device=device_name, quick=a.quick, versions=versions, time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        records.append(record)
        with a.out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "versions"}), flush=True)

    parts = {"parity": part_parity, "embed": part_embed, "train": part_train}
    for name in a.parts.split(","):
        start = time.perf_counter()
        parts[name](a, write)
        print(f"# {name}: {time.perf_counter() - start:.0f} s", flush=True)
    print(report(records))
    if any(isinstance(v, float) and math.isnan(v) for r in records for v in r.values()):
        sys.exit("NaN in the results")


if __name__ == "__main__":
    main()
