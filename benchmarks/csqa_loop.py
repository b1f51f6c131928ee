#!/usr/bin/env python
"""CommonsenseQA in a plain training loop, to tell the model from the loop (issue 4).

Trains one epoch of CommonsenseQA (bench_tasks' hyperparameters) with either
transformers' ``AutoModelForMultipleChoice`` or bertkit's ``multiple_choice`` model in
the same loop: the whole train set in one ``randperm`` order, the Trainer's AdamW
parameter groups, linear schedule with warm-up and gradient clipping, the same initial
weights (transformers' model loaded after ``set_seed``, its state copied into bertkit's),
dropout on. Both are scored by bench_tasks' transformers-side evaluation.

  .venv/bin/python benchmarks/csqa_loop.py --model transformers --seed 44
  .venv/bin/python benchmarks/csqa_loop.py --model bertkit --seed 44                # as fit runs it
  .venv/bin/python benchmarks/csqa_loop.py --model bertkit --full-last-layer --torch-dropout

``--full-last-layer`` computes every position in the last layer (``fit`` computes the
first only, as the pooler reads nothing else); ``--torch-dropout`` draws bertkit's hidden
dropout masks with ``nn.Dropout`` (bernoulli) instead of its cheaper uniform draw. With
both, bertkit draws the same random numbers as transformers in the same order.
Results are appended to ``results/csqa_loop.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_tasks  # noqa: E402
import common  # noqa: E402

HERE = Path(__file__).resolve().parent


def trainer_model(seed: int):
    """transformers' multiple-choice model of the default checkpoint, its classifier
    initialised after ``set_seed(seed)``, as bench_tasks' Trainer side makes it."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.set_seed(seed)
    return transformers.AutoModelForMultipleChoice.from_pretrained(common.default_model_dir())


def trainer_order(n: int, seed: int) -> list[int]:
    """The order in which the Trainer visits ``n`` training rows under ``seed``: accelerate's
    ``SeedableRandomSampler`` is a ``randperm`` under a generator seeded with the seed
    (``csqa_variant.py --flags draws,shift,torch,notrim,warmup`` reproduces its run)."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def bertkit_state(reference) -> dict:
    """``reference``'s weights under bertkit's names (copies)."""
    return {(k if k.startswith("bert.") else "head." + k): v.clone() for k, v in reference.state_dict().items()}


def setup(seed: int, quick: bool):
    """bench_tasks' CommonsenseQA hyperparameters and data, the Trainer side's features
    (``kit``) and :func:`trainer_model`."""
    import transformers

    hp = bench_tasks.HYPER["csqa"]
    data = bench_tasks.load("csqa", quick)
    tokenizer = transformers.AutoTokenizer.from_pretrained(common.default_model_dir())
    kit = bench_tasks._hf_csqa(tokenizer, data["train"], hp)
    return hp, data, kit, trainer_model(seed)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("transformers", "bertkit"), required=True)
    parser.add_argument("--seed", type=int, default=44)
    parser.add_argument("--full-last-layer", action="store_true")
    parser.add_argument("--torch-dropout", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small subsets (a smoke test)")
    a = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F
    import transformers

    import bertkit
    import bertkit.modeling
    from bertkit.training._optim import param_groups

    common.set_threads()
    transformers.logging.set_verbosity_error()
    if a.torch_dropout:
        bertkit.modeling.Dropout.forward = torch.nn.Dropout.forward
    hp, data, kit, reference = setup(a.seed, a.quick)
    model_dir = common.default_model_dir()
    if a.model == "transformers":
        model = reference

        def logits(batch):
            return model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    else:
        model = bertkit.load_pretrained(model_dir, head="multiple_choice")
        model.load_state_dict(bertkit_state(reference))

        def logits(batch):
            return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"],
                         first_token_only=not a.full_last_layer)["logits"]

    rows, size = kit["train"], hp["batch_size"]
    order = trainer_order(len(rows), a.seed)
    steps = math.ceil(len(rows) / size)
    optimizer = torch.optim.AdamW(
        param_groups(model, learning_rate=hp["learning_rate"], weight_decay=hp["weight_decay"], layer_lr_decay=1.0),
        lr=hp["learning_rate"], fused=True)
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, math.ceil(hp["warmup_ratio"] * steps), steps)
    torch.manual_seed(a.seed)
    model.train()
    started, total = time.perf_counter(), 0.0
    for i in range(steps):
        batch = kit["collate"]([rows[j] for j in order[i * size:(i + 1) * size]])
        loss = F.cross_entropy(logits(batch), batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        total += float(loss.detach())
    fit_s = time.perf_counter() - started
    model.eval()
    if a.model == "bertkit":  # score bertkit's weights with the same evaluation code
        reference.load_state_dict({k.removeprefix("head."): v for k, v in model.state_dict().items()})
    record = {"bench": "csqa_loop", "model": a.model, "seed": a.seed, "quick": a.quick,
              "full_last_layer": a.full_last_layer, "torch_dropout": a.torch_dropout,
              "accuracy": kit["evaluate"](reference, data["eval"])["metric"],
              "train_loss_mean": total / steps, "fit_s": round(fit_s, 1)}
    print(json.dumps(record))
    out = HERE / "results" / ("csqa_loop_quick.jsonl" if a.quick else "csqa_loop.jsonl")
    with out.open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
