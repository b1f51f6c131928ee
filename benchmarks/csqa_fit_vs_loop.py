#!/usr/bin/env python
"""``BertMultipleChoice.fit`` against the plain loop of ``csqa_loop.py``, under the same draws.

``csqa_loop.py`` showed that bertkit's model and transformers' give the same CommonsenseQA
run in one plain loop when they draw the same random numbers. This script closes the
other half: it runs the first ``--steps`` steps of that loop with bertkit's model, then
``fit`` with the loop's draws handed to it (the loop's initial weights, its ``randperm``
batch order, transformers' warm-up schedule, PyTorch's dropout masks, the full last
layer, and the global generator reseeded where the loop reseeds it), and prints both
losses step by step. Equal losses mean that ``fit`` adds nothing of its own to the
training step, so what differs between a ``fit`` run and a Trainer run is the draws and
the warm-up offset (bertkit's first step has a learning rate above 0).

  .venv/bin/python benchmarks/csqa_fit_vs_loop.py --steps 30 --seed 44

One JSON line goes to ``results/csqa_fit_vs_loop.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import csqa_loop  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=44)
    parser.add_argument("--quick", action="store_true", help="small subsets (a smoke test)")
    a = parser.parse_args(argv)

    import numpy as np
    import torch
    import torch.nn.functional as F
    import transformers

    import bertkit
    import bertkit.dropout
    import bertkit.training._loop as loop
    from bertkit.estimators import _fitting
    from bertkit.training._optim import param_groups

    common.set_threads()
    transformers.logging.set_verbosity_error()
    bertkit.dropout.TORCH_MASKS = True
    hp, data, kit, reference = csqa_loop.setup(a.seed, a.quick)
    model_dir = common.default_model_dir()
    start = csqa_loop.bertkit_state(reference)
    rows, size = kit["train"], hp["batch_size"]
    order = csqa_loop.trainer_order(len(rows), a.seed)
    total_steps = math.ceil(len(rows) / size)
    n = min(a.steps, total_steps)

    def schedule(optimizer, _warmup, total):
        return transformers.get_linear_schedule_with_warmup(optimizer, math.ceil(hp["warmup_ratio"] * total), total)

    # The plain loop (csqa_loop.py --model bertkit --full-last-layer --torch-dropout).
    model = bertkit.load_pretrained(model_dir, head="multiple_choice")
    model.load_state_dict(start)
    optimizer = torch.optim.AdamW(
        param_groups(model, learning_rate=hp["learning_rate"], weight_decay=hp["weight_decay"], layer_lr_decay=1.0),
        lr=hp["learning_rate"], fused=True)
    lr_schedule = schedule(optimizer, None, total_steps)
    torch.manual_seed(a.seed)
    model.train()
    loop_losses = []
    for i in range(n):
        batch = kit["collate"]([rows[j] for j in order[i * size:(i + 1) * size]])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"])["logits"]
        loss = F.cross_entropy(logits, batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loop_losses.append(float(loss.detach()))

    # fit, handed the loop's draws; interrupted (Ctrl-C's path) after n steps.
    bertkit.BertMultipleChoice._fit_forward_kwargs = {}
    loop.train_batches = lambda lengths, batch_size, rng, **kw: [
        np.asarray(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    loop.linear_schedule = schedule
    new_model = bertkit.BertMultipleChoice._new_model

    def loop_start(self, folder, **options):
        built = new_model(self, folder, **options)
        built.load_state_dict(start)
        return built

    bertkit.BertMultipleChoice._new_model = loop_start
    shared_fit, fit_losses = _fitting.fit, []

    def recording_fit(model, data, targets, loss_fn, *args, **kwargs):
        def recorded(outputs, target, weight):
            loss = loss_fn(outputs, target, weight)
            fit_losses.append(float(loss.detach()))
            if len(fit_losses) > n:
                raise KeyboardInterrupt
            return loss

        torch.manual_seed(a.seed)  # where the loop reseeds: after the model is built
        return shared_fit(model, data, targets, recorded, *args, **kwargs)

    _fitting.fit = recording_fit
    est = bertkit.BertMultipleChoice(
        learning_rate=hp["learning_rate"], batch_size=size, n_epochs=1, max_length=hp["max_length"],
        warmup_ratio=hp["warmup_ratio"], weight_decay=hp["weight_decay"], random_state=a.seed, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interruption's warning
        est.fit(data["train"][["prompt", "choices"]], data["train"]["label"])
    diffs = [abs(x - y) for x, y in zip(loop_losses, fit_losses, strict=False)]
    for i, (x, y) in enumerate(zip(loop_losses, fit_losses, strict=False)):
        print(f"step {i:3d}  loop {x:.6f}  fit {y:.6f}  |diff| {abs(x - y):.1e}")
    record = {"bench": "csqa_fit_vs_loop", "seed": a.seed, "steps": n, "quick": a.quick,
              "loop_losses": loop_losses, "fit_losses": fit_losses[:n], "max_abs_diff": max(diffs)}
    print(json.dumps({k: v for k, v in record.items() if not k.endswith("losses")}))
    with (HERE / "results" / "csqa_fit_vs_loop.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
