#!/usr/bin/env python
"""bench_tasks' CommonsenseQA run of bertkit with some of its training shortcuts off (issue 4).

Each flag turns one off, so that ``fit`` computes what transformers' Trainer computes:

``torch``    PyTorch's dropout masks (``bertkit.dropout.TORCH_MASKS``) instead of bertkit's
``notrim``   the full last layer in training instead of the first positions only
``random``   random training batches (``train_batches(group_factor=1)``), as the Trainer
             samples them for multiple choice, instead of length-grouped ones
``draws``    the Trainer's draws instead of bertkit's: the classifier initialised by
             transformers after ``set_seed(seed)``, batches in ``randperm(seed)`` order,
             and the global generator reseeded with ``seed`` when training starts
``warmup``   transformers' warm-up: ``ceil(ratio * steps)`` steps, the first at learning
             rate 0 (bertkit's starts one step earlier: ``int(ratio * steps)`` steps,
             the first at ``1 / warmup`` of the rate)
``shift``    with ``draws``: one 64-bit number drawn from the global generator after it is
             reseeded, as the Trainer's DataLoader draws its workers' base seed when its
             iterator starts; the dropout masks then come from the Trainer's stream.
             ``draws,shift,torch,notrim,warmup`` is the Trainer's run, draw for draw

  .venv/bin/python benchmarks/csqa_variant.py --seed 42 --flags torch,notrim,random

One JSON line (bench_tasks' record with a ``note``) goes to ``results/csqa_variant.jsonl``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent
FLAGS = ("torch", "notrim", "random", "draws", "warmup", "shift")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--flags", default=",".join(FLAGS), help=f"comma list of: {', '.join(FLAGS)}")
    parser.add_argument("--out", default=str(HERE / "results" / "csqa_variant.jsonl"))
    a = parser.parse_args(argv)
    flags = {f for f in a.flags.split(",") if f}
    if flags - set(FLAGS):
        parser.error(f"unknown flags {sorted(flags - set(FLAGS))}; choose from {', '.join(FLAGS)}")
    if "shift" in flags and "draws" not in flags:
        parser.error("shift moves the Trainer's draws: use it together with draws")

    import bertkit
    import bertkit.dropout
    import bertkit.training._loop as loop

    if "random" in flags:
        loop.train_batches = functools.partial(loop.train_batches, group_factor=1)
    if "torch" in flags:
        bertkit.dropout.TORCH_MASKS = True
    if "notrim" in flags:
        bertkit.BertMultipleChoice._fit_forward_kwargs = {}
    import bench_tasks

    if "warmup" in flags:
        import torch

        def trainer_schedule(optimizer, _warmup_steps, total_steps):
            warmup = math.ceil(bench_tasks.HYPER["csqa"]["warmup_ratio"] * total_steps)

            def factor(step: int) -> float:  # transformers' get_linear_schedule_with_warmup
                if step < warmup:
                    return step / max(1, warmup)
                return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

            return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

        loop.linear_schedule = trainer_schedule
    if "draws" in flags:
        _use_trainer_draws(a.seed, bertkit, loop, shift="shift" in flags)

    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "record.json"
        bench_tasks.main(["--task", "csqa", "--impl", "bertkit", "--repeat", "0", "--result-file", str(result),
                          "--seed", str(a.seed), "--threads", "2"])
        record = json.loads(result.read_text())
    record["note"] = "variant: " + ",".join(sorted(flags))
    with open(a.out, "a") as f:
        f.write(json.dumps(record) + "\n")


def _use_trainer_draws(seed: int, bertkit, loop, *, shift: bool) -> None:
    import csqa_loop
    import numpy as np
    import torch

    from bertkit.estimators import _fitting

    start = csqa_loop.bertkit_state(csqa_loop.trainer_model(seed))
    new_model = bertkit.BertMultipleChoice._new_model

    def with_start(self, folder, **options):
        model = new_model(self, folder, **options)
        model.load_state_dict(start)
        return model

    def permuted(lengths, batch_size, rng, **kwargs):
        order = np.asarray(csqa_loop.trainer_order(len(lengths), seed))
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    shared_fit = _fitting.fit

    def reseeded(*args, **kwargs):
        torch.manual_seed(seed)
        if shift:  # where the Trainer's DataLoader iterator draws its _base_seed
            torch.empty((), dtype=torch.int64).random_()
        return shared_fit(*args, **kwargs)

    bertkit.BertMultipleChoice._new_model = with_start
    loop.train_batches = permuted
    _fitting.fit = reseeded


if __name__ == "__main__":
    main()
