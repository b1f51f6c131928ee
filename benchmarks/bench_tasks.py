#!/usr/bin/env python
"""Task benchmark (issue 4): bertkit's other estimators against transformers' Trainer
fine-tuning the same model with the same hyperparameters, each in its own process.

Tasks (data from $BERTKIT_DATA or ../shared/data, read with bertkit.datasets)
  conll     BertTokenClassifier vs AutoModelForTokenClassification: CoNLL-2003 train
            (14,041 sentences), 1 epoch; entity micro F1 on test (3,453 sentences)
  csqa      BertMultipleChoice vs AutoModelForMultipleChoice: CommonsenseQA train
            (9,741 questions, 5 choices); accuracy on dev (1,221)
  xquad     BertQuestionAnswerer vs AutoModelForQuestionAnswering: XQuAD-en (a SQuAD
            v1.1 dev subset, 48 articles); train on the first 38 articles, SQuAD F1/EM
            on the other 10
  mlm       BertMaskedLM vs BertForMaskedLM: masked-token accuracy on WikiText-2 test
            before and after training on WikiText-2 valid (1 epoch)
  pretrain  bertkit only: a tiny BertPretrainer from scratch (own WordPiece vocabulary)
            on WikiText-2 valid; masked-LM accuracy on test against the most-frequent-
            token baseline; then its checkpoint trains a BertClassifier on SST-2

Both sides get the same hyperparameters (the table HYPER below: bertkit's estimator
defaults for learning rate, warm-up and weight decay; batch size, epochs and max_length
per task), the same seed, fp32 on 2 CPU threads, and are scored by the same code
(bertkit.metrics for F1 and SQuAD; one masked-LM scorer, defined here and used for
both models, with one fixed masking of the test texts). Trainer uses group_by_length
(except multiple choice, where its sampler sees 5 rows per question and cannot
group). `fit_s` is what a user waits for: bertkit's `est.fit(...)`; for transformers
the tokenizer load, feature building, model load and `trainer.train()`.

Usage
  python benchmarks/bench_tasks.py                          # all tasks, ~75 min idle
  python benchmarks/bench_tasks.py --tasks conll,xquad --repeats 2
  python benchmarks/bench_tasks.py --quick                  # small subsets, ~4 min
  python benchmarks/bench_tasks.py --task conll --impl bertkit --quick   # one run
  python benchmarks/bench_tasks.py --summarize benchmarks/results/tasks.jsonl
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HERE = Path(__file__).resolve().parent
TASKS = ("conll", "csqa", "xquad", "mlm", "pretrain")
IMPLS = ("bertkit", "hf-trainer")
#: Shared hyperparameters per task (learning rate, warm-up and weight decay are the
#: bertkit estimator's defaults; both sides get every value explicitly).
HYPER = {
    "conll": dict(learning_rate=1e-4, batch_size=32, epochs=1, max_length=128, warmup_ratio=0.1, weight_decay=0.01),
    "csqa": dict(learning_rate=5e-5, batch_size=16, epochs=1, max_length=64, warmup_ratio=0.1, weight_decay=0.01),
    "xquad": dict(learning_rate=1e-4, batch_size=16, epochs=2, max_length=384, doc_stride=128,
                  warmup_ratio=0.1, weight_decay=0.01),
    "mlm": dict(learning_rate=1e-4, batch_size=32, epochs=1, max_length=128, warmup_ratio=0.1, weight_decay=0.01),
}
#: --quick subsets: (train rows, eval rows)
QUICK_SIZES = {"conll": (600, 300), "csqa": (300, 200), "xquad": (6, 2), "mlm": (300, 200), "pretrain": (200, 100)}
XQUAD_TRAIN_ARTICLES = 38
MLM_WORDS = 90  # WikiText paragraphs are cut into pieces of at most this many words
MASK_SEED = 1234


# ===================================================================== data
def _data(name: str) -> Path:
    path = common.data_dir() / name
    if not path.exists():
        raise SystemExit(f"{path} not found: set BERTKIT_DATA to the folder holding it")
    return path


def load(task: str, quick: bool) -> dict:
    import bertkit.datasets as bd

    n_train, n_eval = QUICK_SIZES[task] if quick else (None, None)
    if task == "conll":
        train = bd.read_conll(_data("conll2003/train.txt"))
        test = bd.read_conll(_data("conll2003/test.txt"))
        return {"train": train[:n_train], "eval": test[:n_eval], "eval_split": "test"}
    if task == "csqa":
        train = bd.read_multiple_choice(_data("commonsenseqa/train_rand_split.jsonl"))
        dev = bd.read_multiple_choice(_data("commonsenseqa/dev_rand_split.jsonl"))
        return {"train": train[:n_train], "eval": dev[:n_eval], "eval_split": "dev"}
    if task == "xquad":
        squad = bd.read_squad(_data("squad_v1.1_dev_subset_xquad_en/xquad.en.json"))
        titles = list(dict.fromkeys(squad["title"]))
        train_titles = titles[:XQUAD_TRAIN_ARTICLES]
        eval_titles = titles[XQUAD_TRAIN_ARTICLES:]
        if quick:
            train_titles, eval_titles = train_titles[:n_train], eval_titles[:n_eval]
        return {"train": squad[squad["title"].isin(train_titles)].reset_index(drop=True),
                "eval": squad[squad["title"].isin(eval_titles)].reset_index(drop=True),
                "eval_split": f"{len(eval_titles)} held-out articles"}
    wiki = _data("wikitext2_raw")
    if task == "mlm":
        train = wiki_pieces(bd.read_wikitext(wiki / "wiki.valid.raw", split="paragraph")["text"])
        test = wiki_pieces(bd.read_wikitext(wiki / "wiki.test.raw", split="paragraph")["text"])
        return {"train": train[:n_train], "eval": test[:n_eval], "eval_split": "test"}
    # pretrain: documents (articles) of sentences
    valid = bd.read_wikitext(wiki / "wiki.valid.raw", split="article")
    test = bd.read_wikitext(wiki / "wiki.test.raw", split="paragraph")["text"]
    docs = [[s for p in paragraphs for s in sentences(p)] for paragraphs in valid["sentences"]]
    docs = [d for d in docs if d]
    if quick:  # a few articles, cut to n_train sentences in all
        kept, total = [], 0
        for d in docs:
            kept.append(d[: n_train - total])
            total += len(kept[-1])
            if total >= n_train:
                break
        docs = kept
    test_sentences = [s for p in test for s in sentences(p)]
    return {"train": docs, "eval": test_sentences[:n_eval], "eval_split": "test sentences"}


def sentences(paragraph: str) -> list[str]:
    """WikiText's tokenised text ends sentences with `` . ``; the pieces keep their period."""
    return [s.strip() for s in re.split(r"(?<= \.) ", paragraph) if len(s.split()) > 2]


def wiki_pieces(paragraphs) -> list[str]:
    """Paragraphs cut into pieces of at most MLM_WORDS words (so most fit 128 tokens)."""
    out = []
    for text in paragraphs:
        words = text.split()
        for i in range(0, len(words), MLM_WORDS):
            piece = words[i:i + MLM_WORDS]
            if len(piece) >= 8:
                out.append(" ".join(piece))
    return out


# ===================================================================== shared scoring
def masked_rows(tokenizer, texts, max_length: int, probability: float = 0.15, seed: int = MASK_SEED):
    """One fixed masking of ``texts`` for both sides: per text, round(15 %) of its
    non-special tokens (at least one) become [MASK]; labels hold the originals."""
    import numpy as np

    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    special = set(tokenizer.all_special_ids)
    rng = np.random.default_rng(seed)
    rows = []
    for row in ids:
        row = np.asarray(row, dtype=np.int64)
        candidates = np.flatnonzero([t not in special for t in row.tolist()])
        if len(candidates) == 0:
            continue
        chosen = rng.choice(candidates, max(1, round(probability * len(candidates))), replace=False)
        labels = np.full(len(row), -100, dtype=np.int64)
        labels[chosen] = row[chosen]
        masked = row.copy()
        masked[chosen] = tokenizer.mask_token_id
        rows.append((masked, labels))
    return rows


def batches(lengths, batch_size: int):
    """Index batches of rows sorted by length (inference only)."""
    import numpy as np

    order = np.argsort(lengths, kind="stable")
    for i in range(0, len(order), batch_size):
        yield order[i:i + batch_size]


def pad(rows, pad_id: int):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.as_tensor(r)
        mask[i, :len(r)] = 1
    return ids, mask


def mlm_accuracy(logits_fn, rows, pad_id: int, batch_size: int = 64) -> dict:
    """Share of masked positions whose original token is the argmax of ``logits_fn``."""
    import numpy as np
    import torch

    hits = total = 0
    with torch.inference_mode():
        for idx in batches([len(r[0]) for r in rows], batch_size):
            ids, mask = pad([rows[i][0] for i in idx], pad_id)
            labels, _ = pad([rows[i][1] for i in idx], -100)
            where = labels != -100
            guess = logits_fn(ids, mask).argmax(-1)
            hits += int((guess[where] == labels[where]).sum())
            total += int(where.sum())
    counts = np.bincount(np.concatenate([r[1][r[1] != -100] for r in rows]))
    return {"accuracy": hits / total, "masked_tokens": total,
            "most_frequent_token_accuracy": float(counts.max() / total)}


# ===================================================================== bertkit side
def run_bertkit(task: str, data: dict, hp: dict, seed: int, quick: bool) -> dict:
    import numpy as np
    import torch

    import bertkit
    from bertkit.metrics import entity_f1, squad_scores

    common_params = dict(learning_rate=hp.get("learning_rate"), batch_size=hp.get("batch_size"),
                         n_epochs=hp.get("epochs"), max_length=hp.get("max_length"),
                         warmup_ratio=hp.get("warmup_ratio"), weight_decay=hp.get("weight_decay"),
                         random_state=seed, device="cpu")
    train, test = data["train"], data["eval"]
    out: dict = {}
    if task == "conll":
        est = bertkit.BertTokenClassifier(**common_params)
        with common.CpuWatch() as fit:
            est.fit(train["tokens"].tolist(), train["tags"].tolist())
        with common.CpuWatch() as ev:
            pred = est.predict(test["tokens"].tolist())
        out["metric_name"], out["metric"] = "entity_f1", entity_f1(test["tags"].tolist(), pred)
    elif task == "csqa":
        est = bertkit.BertMultipleChoice(**common_params)
        with common.CpuWatch() as fit:
            est.fit(train[["prompt", "choices"]], train["label"])
        with common.CpuWatch() as ev:
            pred = est.predict(test[["prompt", "choices"]])
        out["metric_name"], out["metric"] = "accuracy", float(np.mean(np.asarray(pred) == test["label"].to_numpy()))
    elif task == "xquad":
        est = bertkit.BertQuestionAnswerer(doc_stride=hp["doc_stride"], **common_params)
        with common.CpuWatch() as fit:
            est.fit(train[["question", "context"]], train["answers"].tolist())
        with common.CpuWatch() as ev:
            pred = est.predict(test[["question", "context"]])
        scores = squad_scores(list(pred), test["answers"].tolist())
        out.update(metric_name="squad_f1", metric=scores["f1"], exact_match=scores["exact_match"])
    elif task == "mlm":
        est = bertkit.BertMaskedLM(**common_params)
        with common.CpuWatch() as fit:
            est.fit(train)
        rows = masked_rows(est.tokenizer_, test, hp["max_length"])
        untrained = bertkit.BertMaskedLM(**common_params).fit(None)  # the checkpoint as it is
        before = mlm_accuracy(_bertkit_logits(untrained), rows, est.tokenizer_.pad_token_id)
        with common.CpuWatch() as ev:
            after = mlm_accuracy(_bertkit_logits(est), rows, est.tokenizer_.pad_token_id)
        out.update(metric_name="masked_lm_accuracy", metric=after["accuracy"], before=before["accuracy"],
                   masked_tokens=after["masked_tokens"],
                   most_frequent_token_accuracy=after["most_frequent_token_accuracy"],
                   bertkit_score_after=est.score(test))
    else:
        return run_pretrain(data, seed, quick)
    out["history"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
                      for h in getattr(est, "history_", [])]
    out["threads"] = torch.get_num_threads()
    return {"fit": fit, "eval": ev, **out}


def _bertkit_logits(est):
    est.model_.eval()

    def logits(ids, mask):
        out = est.model_(input_ids=ids, attention_mask=mask)
        return out["prediction_logits"] if "prediction_logits" in out else out["logits"]
    return logits


def run_pretrain(data: dict, seed: int, quick: bool) -> dict:
    """A tiny BERT from scratch on WikiText-2 valid; then a classifier from its checkpoint."""
    import bertkit

    config = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                  max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    pre = bertkit.BertPretrainer(config=config, train_tokenizer=True, vocab_size=4000, max_length=64,
                                 batch_size=32, learning_rate=3e-3, n_epochs=2 if quick else 30,
                                 warmup_ratio=0.05, random_state=seed, device="cpu")
    with common.CpuWatch() as fit:
        pre.fit(data["train"])
    rows = masked_rows(pre.tokenizer_, data["eval"], 64)
    with common.CpuWatch() as ev:
        scores = mlm_accuracy(_bertkit_logits(pre), rows, pre.tokenizer_.pad_token_id)
    folder = Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    pre.save(folder)
    n_train = 300 if quick else 4000
    X_train, y_train = common.load_sst2("train", n_train, seed=0)
    X_dev, y_dev = common.load_sst2("dev")
    clf = bertkit.BertClassifier(model=str(folder), max_length=64, n_epochs=3, learning_rate=1e-3,
                                 random_state=seed, device="cpu")
    with common.CpuWatch() as clf_fit:
        clf.fit(X_train, y_train)
    majority = max(sum(y_dev), len(y_dev) - sum(y_dev)) / len(y_dev)
    return {"fit": fit, "eval": ev, "metric_name": "masked_lm_accuracy", "metric": scores["accuracy"],
            "most_frequent_token_accuracy": scores["most_frequent_token_accuracy"],
            "masked_tokens": scores["masked_tokens"], "bertkit_score": pre.score([data["eval"]]),
            "n_sentences": sum(len(d) for d in data["train"]), "n_documents": len(data["train"]),
            "config": config, "vocab_size": len(pre.tokenizer_),
            "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
                        for h in pre.history_],
            "classifier": {"sst2_train": len(X_train), "dev_accuracy": clf.score(X_dev, y_dev),
                           "dev_majority_class": majority, "fit_s": round(clf_fit.wall, 2)}}


# ===================================================================== transformers side
def run_hf(task: str, data: dict, hp: dict, seed: int, quick: bool) -> dict:
    import torch
    import transformers
    from transformers import AutoTokenizer, Trainer, TrainingArguments, set_seed

    transformers.logging.set_verbosity_error()
    model_dir = common.default_model_dir()
    train, test = data["train"], data["eval"]
    fit = common.CpuWatch().__enter__()
    tok = AutoTokenizer.from_pretrained(model_dir)
    builders = {"conll": _hf_conll, "csqa": _hf_csqa, "xquad": _hf_xquad, "mlm": _hf_mlm}
    task_kit = builders[task](tok, train, hp)
    set_seed(seed)
    model = task_kit["model"](model_dir)
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="bench-tasks-"),
        per_device_train_batch_size=hp["batch_size"], learning_rate=hp["learning_rate"],
        num_train_epochs=hp["epochs"], weight_decay=hp["weight_decay"], warmup_ratio=hp["warmup_ratio"],
        max_grad_norm=1.0, lr_scheduler_type="linear", group_by_length=task != "csqa",
        logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none", seed=seed,
        use_cpu=True, dataloader_num_workers=0, dataloader_pin_memory=False, disable_tqdm=True,
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=task_kit["train"], data_collator=task_kit["collate"])
    result = trainer.train()
    fit.__exit__(None, None, None)
    model.eval()
    with common.CpuWatch() as ev:
        out = task_kit["evaluate"](model, test)
    out["train_loss_mean"] = round(float(result.training_loss), 4)
    out["threads"] = torch.get_num_threads()
    out["impl_settings"] = {"group_by_length": args.group_by_length,
                            "optim": str(getattr(args.optim, "value", args.optim)),
                            "attn_implementation": getattr(model.config, "_attn_implementation", None)}
    return {"fit": fit, "eval": ev, **out}


def _hf_conll(tok, train, hp):
    import torch
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

    from bertkit.metrics import entity_f1

    labels = sorted({t for tags in train["tags"] for t in tags})
    index = {t: i for i, t in enumerate(labels)}
    enc = tok(train["tokens"].tolist(), is_split_into_words=True, truncation=True, max_length=hp["max_length"])
    features = []
    for i, tags in enumerate(train["tags"]):
        previous, row_labels = None, []
        for w in enc.word_ids(i):
            row_labels.append(-100 if w is None or w == previous else index[tags[w]])
            previous = w
        features.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                         "attention_mask": enc["attention_mask"][i], "labels": row_labels})

    def model(path):
        return AutoModelForTokenClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=index)

    def evaluate(model, test):
        sentences = test["tokens"].tolist()
        e = tok(sentences, is_split_into_words=True, truncation=True, max_length=hp["max_length"])
        predicted = [["O"] * len(s) for s in sentences]
        with torch.inference_mode():
            for idx in batches([len(x) for x in e["input_ids"]], 64):
                ids, mask = pad([e["input_ids"][i] for i in idx], tok.pad_token_id)
                guess = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
                for row, i in enumerate(idx):
                    previous = None
                    for pos, w in enumerate(e.word_ids(int(i))):
                        if w is not None and w != previous:
                            predicted[i][w] = labels[int(guess[row, pos])]
                        previous = w
        return {"metric_name": "entity_f1", "metric": entity_f1(test["tags"].tolist(), predicted)}

    return {"train": features, "collate": DataCollatorForTokenClassification(tok), "model": model,
            "evaluate": evaluate}


def _hf_csqa(tok, train, hp):
    import numpy as np
    import torch
    from transformers import AutoModelForMultipleChoice

    def features(frame, with_labels=True):
        out = []
        for prompt, choices, label in zip(frame["prompt"], frame["choices"], frame["label"], strict=True):
            e = tok([prompt] * len(choices), list(choices), truncation=True, max_length=hp["max_length"])
            row = {k: e[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
            if with_labels:
                row["labels"] = int(label)
            out.append(row)
        return out

    def collate(rows):
        k = len(rows[0]["input_ids"])
        flat = [{key: row[key][j] for key in ("input_ids", "token_type_ids", "attention_mask")}
                for row in rows for j in range(k)]
        batch = tok.pad(flat, return_tensors="pt")
        batch = {key: v.view(len(rows), k, -1) for key, v in batch.items()}
        if "labels" in rows[0]:
            batch["labels"] = torch.tensor([row["labels"] for row in rows])
        return batch

    def evaluate(model, test):
        rows = features(test, with_labels=False)
        scores = np.zeros((len(rows), len(rows[0]["input_ids"])))
        with torch.inference_mode():
            for idx in batches([max(len(x) for x in r["input_ids"]) for r in rows], 32):
                scores[idx] = model(**collate([rows[i] for i in idx])).logits.numpy()
        return {"metric_name": "accuracy", "metric": float(np.mean(scores.argmax(1) == test["label"].to_numpy()))}

    return {"train": features(train), "collate": collate, "evaluate": evaluate,
            "model": AutoModelForMultipleChoice.from_pretrained}


def _hf_xquad(tok, train, hp):
    import numpy as np
    import torch
    from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding

    from bertkit.metrics import squad_scores

    def windows(frame):
        return tok(frame["question"].tolist(), frame["context"].tolist(), truncation="only_second",
                   max_length=hp["max_length"], stride=hp["doc_stride"], return_overflowing_tokens=True,
                   return_offsets_mapping=True)

    enc = windows(train)
    features = []
    for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
        answer = train["answers"][sample][0]
        first, last = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        sequence, offsets = enc.sequence_ids(i), enc["offset_mapping"][i]
        context = [j for j, s in enumerate(sequence) if s == 1]
        start = end = 0
        if offsets[context[0]][0] <= first and offsets[context[-1]][1] >= last:
            start = next(j for j in context if offsets[j][1] > first)
            end = next(j for j in reversed(context) if offsets[j][0] < last)
        features.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                         "attention_mask": enc["attention_mask"][i], "start_positions": start,
                         "end_positions": end})

    def evaluate(model, test, n_best=20, max_answer_length=30):
        e = windows(test)
        best = [(-np.inf, "") for _ in range(len(test))]
        contexts = test["context"].tolist()
        with torch.inference_mode():
            for idx in batches([len(x) for x in e["input_ids"]], 32):
                ids, mask = pad([e["input_ids"][i] for i in idx], tok.pad_token_id)
                types, _ = pad([e["token_type_ids"][i] for i in idx], 0)
                out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
                for row, i in enumerate(idx):
                    i = int(i)
                    sample, sequence, offsets = e["overflow_to_sample_mapping"][i], e.sequence_ids(i), e["offset_mapping"][i]
                    n = len(sequence)
                    start_logits = out.start_logits[row, :n].numpy()
                    end_logits = out.end_logits[row, :n].numpy()
                    for s in np.argsort(start_logits)[::-1][:n_best]:
                        for t in np.argsort(end_logits)[::-1][:n_best]:
                            if sequence[s] != 1 or sequence[t] != 1 or t < s or t - s + 1 > max_answer_length:
                                continue
                            score = start_logits[s] + end_logits[t]
                            if score > best[sample][0]:
                                best[sample] = (score, contexts[sample][offsets[s][0]:offsets[t][1]])
        scores = squad_scores([b[1] for b in best], test["answers"].tolist())
        return {"metric_name": "squad_f1", "metric": scores["f1"], "exact_match": scores["exact_match"]}

    return {"train": features, "collate": DataCollatorWithPadding(tok), "evaluate": evaluate,
            "model": AutoModelForQuestionAnswering.from_pretrained}


def _hf_mlm(tok, train, hp):
    from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

    enc = tok(list(train), truncation=True, max_length=hp["max_length"], return_special_tokens_mask=True)
    features = [{k: enc[k][i] for k in enc.keys()} for i in range(len(train))]
    state = {}

    def model(path):
        state["before"] = BertForMaskedLM.from_pretrained(path)  # an untrained head of its own
        state["before"].eval()
        return BertForMaskedLM.from_pretrained(path)

    def evaluate(model, test):
        rows = masked_rows(tok, test, hp["max_length"])
        before = mlm_accuracy(lambda i, m: state["before"](input_ids=i, attention_mask=m).logits, rows,
                              tok.pad_token_id)
        after = mlm_accuracy(lambda i, m: model(input_ids=i, attention_mask=m).logits, rows, tok.pad_token_id)
        return {"metric_name": "masked_lm_accuracy", "metric": after["accuracy"], "before": before["accuracy"],
                "masked_tokens": after["masked_tokens"],
                "most_frequent_token_accuracy": after["most_frequent_token_accuracy"]}

    return {"train": features, "collate": DataCollatorForLanguageModeling(tok, mlm_probability=0.15),
            "model": model, "evaluate": evaluate}


# ===================================================================== one run / driver
def run_one(a) -> dict:
    common.set_threads(a.threads)
    data = load(a.task, a.quick)
    hp = HYPER.get(a.task, {})
    runner = run_bertkit if a.impl == "bertkit" else run_hf
    result = runner(a.task, data, hp, a.seed, a.quick)
    fit, ev = result.pop("fit"), result.pop("eval")
    return {"bench": "tasks", "task": a.task, "impl": a.impl, "quick": bool(a.quick), "repeat": a.repeat,
            "n_train": len(data["train"]), "n_eval": len(data["eval"]), "eval_split": data["eval_split"],
            "hyperparameters": {**hp, "seed": a.seed}, "fit_s": round(fit.wall, 2), "eval_s": round(ev.wall, 2),
            "foreign_cpu_cores": fit.summary()["foreign_cpu_cores"], "peak_rss_mb": round(common.peak_rss_mb(), 1),
            **result, "versions": common.versions(), "machine": common.machine()}


def child_args(a, task: str, impl: str, repeat: int, result_file: str) -> list[str]:
    args = [sys.executable, str(Path(__file__).resolve()), "--task", task, "--impl", impl, "--repeat", str(repeat),
            "--result-file", result_file, "--seed", str(a.seed), "--threads", str(a.threads)]
    return args + (["--quick"] if a.quick else [])


def plan(a) -> list[tuple[str, str, int]]:
    return common.alternating([t.strip() for t in a.tasks.split(",")], [i.strip() for i in a.impls.split(",")],
                              a.repeats, known_tasks=TASKS, known_impls=IMPLS,
                              impls_for=lambda task, order: order if task != "pretrain" else ["bertkit"])


def summary_line(record: dict) -> str:
    extra = ""
    if "before" in record:
        extra = f" (before {record['before']:.4f})"
    if "classifier" in record:
        c = record["classifier"]
        extra = (f" (most frequent token {record['most_frequent_token_accuracy']:.4f}; SST-2 classifier "
                 f"{c['dev_accuracy']:.4f} vs majority {c['dev_majority_class']:.4f})")
    return (f"fit {record['fit_s']:.1f} s, eval {record['eval_s']:.1f} s, {record['metric_name']} "
            f"{record['metric']:.4f}{extra}, foreign {record['foreign_cpu_cores']:.2f} cores")


def table(records: list[dict]) -> str:
    ok = [r for r in records if r.get("bench") == "tasks" and "error" not in r]
    lines = ["| task | impl | n train | fit s | eval s | metric | value | fit-time ratio vs Trainer | foreign cores |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in ok:
        peers = [p for p in ok if p["task"] == r["task"] and p["impl"] == "hf-trainer"
                 and p["repeat"] == r["repeat"] and p["quick"] == r["quick"]
                 and p["hyperparameters"].get("seed") == r["hyperparameters"].get("seed")
                 and _comparable_times(p, r)]
        ratio = f"{r['fit_s'] / peers[0]['fit_s']:.2f}x" if peers and r["impl"] == "bertkit" else ""
        value = f"{r['metric']:.4f}" + (f" (before {r['before']:.4f})" if "before" in r else "")
        lines.append(f"| {r['task']} | {r['impl']} | {r['n_train']} | {r['fit_s']:.1f} | {r['eval_s']:.1f} | "
                     f"{r['metric_name']} | {value} | {ratio} | {r['foreign_cpu_cores']:.2f} |")
    paired = paired_by_seed(ok)
    return "\n".join(lines) + (f"\n\n{paired}" if paired else "")


def _started(record: dict):
    """When the driver run of a record started (its log is named tasks-DATE-TIME-...)."""
    import datetime

    found = re.search(r"tasks-(\d{8}-\d{6})-", record.get("log") or "")
    return datetime.datetime.strptime(found.group(1), "%Y%m%d-%H%M%S") if found else None


def _comparable_times(a: dict, b: dict) -> bool:
    """Two runs whose fit times may be divided: same host, drivers started within 3 hours
    (this host's speed drifts by 5-10 % over a day and more between days)."""
    t, u = _started(a), _started(b)
    return (t is not None and u is not None and abs((t - u).total_seconds()) <= 3 * 3600
            and a.get("machine") == b.get("machine"))


def paired_by_seed(records: list[dict]) -> str:
    """Per task run on several seeds by both sides: bertkit minus the Trainer, seed by seed.

    One score of a 1-epoch fine-tuning run moves with the seed by about as much as the
    two sides differ, so "at least the same score" is read on the mean of paired seeds,
    with its standard error. The latest full-size record of each (task, impl, seed)
    counts: reruns replace older code's results.
    """
    import statistics

    latest: dict[tuple, dict] = {}
    for r in records:
        if not r["quick"] and r["task"] != "pretrain":
            latest[(r["task"], r["impl"], r["hyperparameters"]["seed"])] = r
    lines = []
    for task in dict.fromkeys(t for t, _, _ in latest):
        seeds = sorted(s for t, i, s in latest if t == task and i == "bertkit" and (t, "hf-trainer", s) in latest)
        if len(seeds) < 2:
            continue
        ours = [latest[(task, "bertkit", s)]["metric"] for s in seeds]
        theirs = [latest[(task, "hf-trainer", s)]["metric"] for s in seeds]
        diff = [a - b for a, b in zip(ours, theirs, strict=True)]
        se = statistics.stdev(diff) / len(diff) ** 0.5
        same_run = [s for s in seeds if _comparable_times(latest[(task, "bertkit", s)], latest[(task, "hf-trainer", s)])]
        ratios = [latest[(task, "bertkit", s)]["fit_s"] / latest[(task, "hf-trainer", s)]["fit_s"] for s in same_run] or [float("nan")]
        lines.append(
            f"{task}, seeds {', '.join(map(str, seeds))}: bertkit {statistics.mean(ours):.4f}, Trainer "
            f"{statistics.mean(theirs):.4f}; paired difference {statistics.mean(diff):+.4f} (SE {se:.4f}, "
            f"bertkit ahead on {sum(d > 0 for d in diff)}, level on {sum(d == 0 for d in diff)}, behind on "
            f"{sum(d < 0 for d in diff)}); fit-time ratio median {statistics.median(ratios):.2f}x over the "
            f"{len(same_run)} seeds whose two runs started within 3 hours on one host"
        )
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma list of: {', '.join(TASKS)}")
    p.add_argument("--impls", default=",".join(IMPLS), help="run order within a repeat")
    p.add_argument("--repeats", type=int, default=1, help="alternating rounds (order reversed every other)")
    p.add_argument("--quick", action="store_true", help="small subsets (smoke test)")
    p.add_argument("--seed", type=int, default=42)
    common.add_driver_args(p, tasks=TASKS, impls=IMPLS, wait_default=900.0, out_name="tasks")
    a = p.parse_args(argv)
    common.finish_driver_args(a, HERE / "results")
    return a


def main(argv=None) -> None:
    a = parse(argv)
    common.main(a, run_one=run_one, table=table, drive=lambda: common.drive(
        plan(a), lambda t, i, r, f: child_args(a, t, i, r, f), out=a.out, bench="tasks", threads=a.threads,
        max_wait_s=a.wait_idle, idle_threshold=a.idle_threshold, quick=a.quick, describe=summary_line))


if __name__ == "__main__":
    main()
