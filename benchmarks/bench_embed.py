#!/usr/bin/env python
"""Embedding throughput: bertkit against transformers, sentence-transformers and ONNX Runtime.

Same checkpoint (the default model, all-MiniLM-L6-v2), same texts, same unit of work:
a list of strings in, a ``(n, 384)`` float32 array of mean-pooled embeddings out
(tokenisation, forward, pooling, and any sorting and unsorting included). Each
configuration runs in its own process, 2 threads, after an idle wait; the
configurations alternate over repeats. Per configuration: one untimed full pass, then
the median of ``--runs`` timed passes. bertkit's tokenisation cache is emptied before
every pass, so each pass tokenises everything as the peers do.

  bash benchmarks/setup_peers.sh                     # once: the peers' environment
  .venv/bin/python benchmarks/bench_embed.py         # every corpus and configuration
  .venv/bin/python benchmarks/bench_embed.py --corpora sst2 --impls bertkit,st --repeats 1
  .venv/bin/python benchmarks/bench_embed.py --summarize benchmarks/results/embed.jsonl

Configurations (``--impls``):
  bertkit        BertEmbedder.transform, fp32 (packed: no compute on padding)
  bertkit-int8   BertEmbedder(precision="int8"): int8 dynamic quantisation of the encoder's linear layers
  bertkit-bf16   BertEmbedder(precision="bf16"): bf16 autocast on the CPU (fast where the CPU has AMX)
  hf-sdpa        transformers AutoModel (sdpa), batches in input order
  hf-sdpa-sorted the same, batches sorted by text length (as sentence-transformers sorts)
  st             SentenceTransformer.encode
  ort-sorted     ONNX Runtime on the optimum export, batches sorted by text length
Corpora (``--corpora``): ``sst2`` (the first 4,096 SST-2 train sentences, max_length 128)
and ``wiki-long`` (the first 256 WikiText-2 test paragraphs of 100-512 tokens, max_length 512).

Results: one JSON line per run in ``results/embed.jsonl``; the table printed at the end
gives sentences/s, bertkit's ratio to the fastest fp32 peer, and how far bertkit's
embeddings are from transformers' (cosine and max abs difference).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HERE = Path(__file__).resolve().parent
CORPORA = ("sst2", "wiki-long")
IMPLS = ("bertkit", "bertkit-int8", "bertkit-bf16", "hf-sdpa", "hf-sdpa-sorted", "st", "ort-sorted")
PEERS = ("hf-sdpa", "hf-sdpa-sorted", "st", "ort-sorted")
MAX_LENGTH = {"sst2": 128, "wiki-long": 512}
BATCH_SIZE = 32
N_TEXTS = {"sst2": 4096, "wiki-long": 256}
QUICK_N = {"sst2": 512, "wiki-long": 64}


# ===================================================================== data
def load_corpus(name: str, n: int, model_dir: str) -> list[str]:
    if name == "sst2":
        texts, _ = common.load_sst2("train")
        return texts[:n]
    from tokenizers import Tokenizer  # both environments have it; no bertkit needed here

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    path = common.data_dir() / "wikitext2_raw" / "wiki.test.raw"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set BERTKIT_DATA to the folder holding wikitext2_raw/")
    paragraphs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("="):
            continue
        if 100 <= len(tokenizer.encode(line).ids) <= 512:
            paragraphs.append(line)
            if len(paragraphs) == n:
                break
    return paragraphs


# ===================================================================== embedders
def make_bertkit(model_dir: str, max_length: int, precision: str):
    import bertkit
    from bertkit.estimators._base import CACHES

    est = bertkit.BertEmbedder(model=model_dir, max_length=max_length, batch_size=BATCH_SIZE,
                               precision=precision, device="cpu").fit()

    def embed(texts):
        CACHES.texts.clear()  # tokenise every pass, as the peers do
        return est.transform(texts)

    return embed, {"params": {k: str(v) for k, v in est.get_params().items()}}


def _sorted_batches(texts, batch_size, sort):
    import numpy as np

    order = np.argsort([-len(t) for t in texts], kind="stable") if sort else np.arange(len(texts))
    return order, [[texts[i] for i in order[s:s + batch_size]] for s in range(0, len(texts), batch_size)]


def _unsort(parts, order):
    import numpy as np

    out = np.empty((len(order), parts[0].shape[1]), dtype=np.float32)
    out[order] = np.concatenate(parts)
    return out


def make_hf(model_dir: str, max_length: int, sort: bool):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="sdpa", dtype=torch.float32).eval()

    def embed(texts):
        order, batches = _sorted_batches(texts, BATCH_SIZE, sort)
        parts = []
        with torch.inference_mode():
            for batch in batches:
                enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                parts.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy())
        return _unsort(parts, order)

    return embed, {"attn_implementation": model.config._attn_implementation}


def make_st(model_dir: str, max_length: int):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_dir, device="cpu")
    st.max_seq_length = max_length

    def embed(texts):
        return st.encode(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)

    return embed, {"st_modules": [type(m).__name__ for m in st]}


def make_ort(model_dir: str, max_length: int, onnx_path: str, threads: int):
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    output = session.get_outputs()[0].name

    def embed(texts):
        order, batches = _sorted_batches(texts, BATCH_SIZE, True)
        parts = []
        for batch in batches:
            enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="np")
            hidden = session.run([output], {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0]
            mask = enc["attention_mask"][..., None].astype(hidden.dtype)
            parts.append((hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None))
        return _unsort(parts, order)

    return embed, {"onnx": onnx_path, "ort_version": ort.__version__}


# ===================================================================== one configuration
def run_one(a) -> dict:
    import numpy as np

    common.set_threads(a.threads)
    n = (QUICK_N if a.quick else N_TEXTS)[a.task]
    max_length = MAX_LENGTH[a.task]
    texts = load_corpus(a.task, n, a.model_dir)
    with common.CpuWatch() as load:
        if a.impl.startswith("bertkit"):
            embed, info = make_bertkit(a.model_dir, max_length, (a.impl.split("-") + ["fp32"])[1])
        elif a.impl.startswith("hf-sdpa"):
            embed, info = make_hf(a.model_dir, max_length, sort=a.impl.endswith("sorted"))
        elif a.impl == "st":
            embed, info = make_st(a.model_dir, max_length)
        else:
            embed, info = make_ort(a.model_dir, max_length, a.onnx, a.threads)
    with common.CpuWatch() as warm:
        emb = embed(texts)
    watches = []
    for _ in range(a.runs):
        with common.CpuWatch() as watch:
            emb = embed(texts)
        watches.append(watch)
    times = sorted(w.wall for w in watches)
    median = times[len(times) // 2]
    if a.save_emb:
        np.save(a.save_emb, np.asarray(emb, dtype=np.float32))
    lengths = None
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(a.model_dir) / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        tokenizer.no_padding()
        lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    except Exception:  # noqa: BLE001 - informative only
        pass
    return {"bench": "embed", "task": a.task, "impl": a.impl, "quick": bool(a.quick), "repeat": a.repeat,
            "n_texts": len(texts), "real_tokens": sum(lengths) if lengths else None, "max_length": max_length,
            "batch_size": BATCH_SIZE, "threads": a.threads, "load_s": round(load.wall, 3),
            "warmup_s": round(warm.wall, 3), "run_s": [round(w.wall, 3) for w in watches],
            "median_s": round(median, 3), "sentences_per_s": round(len(texts) / median, 1),
            "real_tokens_per_s": round(sum(lengths) / median, 1) if lengths else None,
            "foreign_cpu_cores": round(max(w.foreign_cores for w in watches), 3),
            "own_cpu_cores": round(sum(w.own_cores for w in watches) / len(watches), 2),
            "peak_rss_mb": round(common.peak_rss_mb(), 1), "emb_shape": list(np.shape(emb)),
            "impl_settings": info, "versions": common.versions(), "machine": common.machine()}


# ===================================================================== driver
def plan(a) -> list[tuple[str, str, int]]:
    return common.alternating([c.strip() for c in a.corpora.split(",")], [i.strip() for i in a.impls.split(",")],
                              a.repeats, known_tasks=CORPORA, known_impls=IMPLS)


def child_args(a, corpus: str, impl: str, repeat: int, result_file: str) -> list[str]:
    python = a.peer_python if impl in PEERS else sys.executable
    args = [python, str(Path(__file__).resolve()), "--task", corpus, "--impl", impl, "--repeat", str(repeat),
            "--result-file", result_file, "--threads", str(a.threads), "--runs", str(a.runs),
            "--model-dir", a.model_dir, "--onnx", a.onnx,
            "--save-emb", str(Path(a.emb_dir) / f"{corpus}-{impl}.npy")]
    return args + (["--quick"] if a.quick else [])


def summary_line(record: dict) -> str:
    return (f"{record['sentences_per_s']:.1f} texts/s (median {record['median_s']:.2f} s), "
            f"foreign {record['foreign_cpu_cores']:.2f} cores")


def agreement(emb_dir: str, corpus: str, impl: str, reference: str = "hf-sdpa") -> dict | None:
    """How far ``impl``'s embeddings are from ``reference``'s: min cosine, max abs diff."""
    import numpy as np

    a_path, b_path = Path(emb_dir) / f"{corpus}-{impl}.npy", Path(emb_dir) / f"{corpus}-{reference}.npy"
    if not (a_path.is_file() and b_path.is_file()):
        return None
    a, b = np.load(a_path).astype(np.float64), np.load(b_path).astype(np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)  # compared after L2 normalisation (as
    b /= np.linalg.norm(b, axis=1, keepdims=True)  # sentence-transformers returns them)
    cos = (a * b).sum(1)
    return {"reference": reference, "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
            "max_abs_diff": float(np.abs(a - b).max())}


def table(records: list[dict]) -> str:
    ok = [r for r in records if r.get("bench") == "embed" and "error" not in r]
    lines = ["| corpus | impl | texts | median s | texts/s | real tok/s | vs fastest fp32 peer | vs transformers (min cos / max abs) | foreign cores |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for corpus in dict.fromkeys(r["task"] for r in ok):
        rows = [r for r in ok if r["task"] == corpus]
        best = {}
        for r in rows:  # per impl, its best repeat (the least disturbed)
            if r["impl"] not in best or r["sentences_per_s"] > best[r["impl"]]["sentences_per_s"]:
                best[r["impl"]] = r
        peers = [r for impl, r in best.items() if impl in PEERS]
        fastest = max(peers, key=lambda r: r["sentences_per_s"]) if peers else None
        for impl, r in best.items():
            ratio = f"{r['sentences_per_s'] / fastest['sentences_per_s']:.2f}x ({fastest['impl']})" if fastest else ""
            agree = r.get("agreement")
            agree = f"{agree['min_cosine']:.6f} / {agree['max_abs_diff']:.1e}" if agree else ""
            tok_s = f"{r['real_tokens_per_s']:.0f}" if r.get("real_tokens_per_s") else ""
            lines.append(f"| {corpus} | {impl} | {r['n_texts']} | {r['median_s']:.2f} | {r['sentences_per_s']:.1f} | "
                         f"{tok_s} | {ratio} | {agree} | {r['foreign_cpu_cores']:.2f} |")
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", default=",".join(CORPORA), help=f"comma list of: {', '.join(CORPORA)}")
    p.add_argument("--impls", default=",".join(IMPLS), help="run order within a repeat")
    p.add_argument("--repeats", type=int, default=2, help="alternating rounds (order reversed every other)")
    p.add_argument("--runs", type=int, default=3, help="timed passes per process (median reported)")
    p.add_argument("--quick", action="store_true", help="small corpora, no idle wait (smoke test)")
    p.add_argument("--peers", default=str(HERE / ".peers"), help="folder made by setup_peers.sh")
    common.add_driver_args(p, tasks=CORPORA, impls=IMPLS, wait_default=600.0, out_name="embed")
    p.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--onnx", default=None, help=argparse.SUPPRESS)
    p.add_argument("--save-emb", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    common.finish_driver_args(a, HERE / "results")
    a.peer_python = str(Path(a.peers) / "venv" / "bin" / "python")
    if a.onnx is None:
        a.onnx = str(Path(a.peers) / "onnx_export" / "model.onnx")
    return a


def drive(a) -> list[dict]:
    runs = plan(a)
    if any(impl in PEERS for _, impl, _ in runs) and not Path(a.peer_python).is_file():
        raise SystemExit(f"{a.peer_python} not found: run `bash benchmarks/setup_peers.sh` first")
    if any(impl == "ort-sorted" for _, impl, _ in runs) and not Path(a.onnx).is_file():
        raise SystemExit(f"{a.onnx} not found: run `bash benchmarks/setup_peers.sh` first")
    if a.model_dir is None:
        a.model_dir = common.default_model_dir()
    a.emb_dir = tempfile.mkdtemp(prefix="bench-embed-")
    records = common.drive(runs, lambda c, i, r, f: child_args(a, c, i, r, f), out=a.out, bench="embed",
                           threads=a.threads, max_wait_s=a.wait_idle, idle_threshold=a.idle_threshold,
                           quick=a.quick, describe=summary_line)
    for record in records:  # embeddings against transformers' (the last repeat's files)
        record["agreement"] = agreement(a.emb_dir, record["task"], record["impl"])
    if records:
        common.emit({"bench": "embed-agreement", "emb_dir": a.emb_dir,
                     "agreement": {f"{r['task']}/{r['impl']}": r["agreement"] for r in records
                                   if r["repeat"] == records[-1]["repeat"]}}, a.out)
    return records


def main(argv=None) -> None:
    a = parse(argv)
    if not a.summarize and a.impl and a.model_dir is None:
        a.model_dir = common.default_model_dir()
    common.main(a, run_one=run_one, table=lambda records: table(_with_agreement(records)), drive=lambda: drive(a))


def _with_agreement(records: list[dict]) -> list[dict]:
    """Attach the agreement lines written by the driver to the matching records."""
    found = {}
    for r in records:
        if r.get("bench") == "embed-agreement":
            found.update(r["agreement"])
    for r in records:
        if r.get("bench") == "embed" and "agreement" not in r:
            r["agreement"] = found.get(f"{r['task']}/{r['impl']}")
    return records


if __name__ == "__main__":
    main()
