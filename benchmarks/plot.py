#!/usr/bin/env python
"""Draw the latest benchmark runs as one SVG (no plotting library needed).

Reads ``results/embed.jsonl`` and ``results/finetune_sst2.jsonl`` (one epoch of SST-2) and draws, for the
latest run of each (the records within ``--window`` minutes of its last record):
embedding throughput per corpus and implementation (texts/s, median over the run's
rounds, with the ratio to the fastest peer), and fine-tuning speed (real tokens/s)
against transformers' Trainer.

  python benchmarks/plot.py                      # -> docs/benchmarks.svg
  python benchmarks/plot.py --out /tmp/b.svg --window 30
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
PEERS = {"hf-sdpa": "transformers sdpa", "hf-sdpa-sorted": "transformers sdpa, sorted",
         "st": "sentence-transformers", "ort-sorted": "ONNX Runtime, sorted",
         "hf-trainer-grouped": "Trainer (group_by_length)"}
OURS = {"bertkit": "bertkit fp32", "bertkit-int8": "bertkit int8", "bertkit-bf16": "bertkit bf16"}
CORPORA = {"sst2": "SST-2, 4,096 sentences", "wiki-long": "WikiText-2, 100-512 tokens"}
PEER_COLOR, OUR_COLOR = "#9aa5b1", "#2f6db5"


def _time(record: dict) -> datetime:
    return datetime.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S")


def latest_run(path: Path, bench: str, window: float) -> list[dict]:
    """The records of ``bench`` within ``window`` minutes of its last one."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("bench") == bench and not r.get("quick")]
    if not rows:
        return []
    last = max(_time(r) for r in rows)
    return [r for r in rows if _time(r) >= last - timedelta(minutes=window)]


def medians(rows: list[dict], key: str, field: str) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r[key], r["impl"]), []).append(r[field])
    return {k: statistics.median(v) for k, v in groups.items()}


class Svg:
    def __init__(self, width: int):
        self.width, self.parts, self.y = width, [], 0

    def text(self, x, y, s, size=12, anchor="start", weight="normal", color="#222"):
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'font-weight="{weight}" fill="{color}">{escape(s)}</text>')

    def rect(self, x, y, w, h, color):
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{color}"/>')

    def bars(self, title: str, items: list[tuple[str, float, bool, str]], unit: str):
        """One panel: ``items`` are (label, value, ours, note) rows, drawn as bars."""
        label_w, bar_max, row_h = 210, self.width - 210 - 150, 22
        self.y += 28
        self.text(10, self.y, title, size=14, weight="bold")
        self.y += 10
        top = max(v for _, v, _, _ in items)
        for label, value, ours, note in items:
            self.y += row_h
            self.text(label_w - 8, self.y - 6, label, anchor="end")
            w = bar_max * value / top
            self.rect(label_w, self.y - row_h + 4, w, row_h - 6, OUR_COLOR if ours else PEER_COLOR)
            self.text(label_w + w + 6, self.y - 6, f"{value:,.0f} {unit}{note}", size=11)
        self.y += 6

    def render(self) -> str:
        height = self.y + 20
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{height}" '
                f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
                + "".join(self.parts) + "</svg>\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE.parent / "docs" / "benchmarks.svg"))
    parser.add_argument("--window", type=float, default=40.0, help="minutes that make one run")
    a = parser.parse_args(argv)
    svg = Svg(760)
    embed = latest_run(HERE / "results" / "embed.jsonl", "embed", a.window)
    if embed:
        speed = medians(embed, "task", "sentences_per_s")
        day = max(_time(r) for r in embed).strftime("%Y-%m-%d")
        for corpus, name in CORPORA.items():
            peers = {i: v for (c, i), v in speed.items() if c == corpus and i in PEERS}
            ours = {i: v for (c, i), v in speed.items() if c == corpus and i in OURS}
            if not peers or not ours:
                continue
            best = max(peers.values())
            items = [(PEERS[i], v, False, "") for i, v in sorted(peers.items(), key=lambda kv: kv[1])]
            items += [(OURS[i], v, True, f"  ({v / best:.2f}x the fastest peer)")
                      for i, v in sorted(ours.items(), key=lambda kv: kv[1])]
            svg.bars(f"Embeddings, {name} ({day}, 2 threads)", items, "texts/s")
    tune = latest_run(HERE / "results" / "finetune_sst2.jsonl", "finetune", a.window)
    if tune:
        speed = medians(tune, "task", "real_tokens_per_s")
        day = max(_time(r) for r in tune).strftime("%Y-%m-%d")
        trainer = speed.get(("sst2", "hf-trainer-grouped"))
        ours = speed.get(("sst2", "bertkit"))
        if trainer and ours:
            sentences = max(r["n_train"] for r in tune)
            svg.bars(f"Fine-tuning, {sentences:,} SST-2 sentences, 1 epoch ({day}, 2 threads)",
                     [(PEERS["hf-trainer-grouped"], trainer, False, ""),
                      ("bertkit", ours, True, f"  ({ours / trainer:.2f}x)")], "real tokens/s")
    Path(a.out).write_text(svg.render())
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
