"""What every benchmark job shares: data, checkpoints, token counts, FLOPs, memory, the machine.

Definitions used throughout (see docs/benchmarks.md):

- *real tokens*: the tokens of the data after truncation to ``max_length``, without padding,
  counted once with the checkpoint's tokenizer; the same number for every tool.
- *computed tokens*: the token positions a tool actually runs through the model, padding
  included, counted by watching the token-embedding lookups (every tool has to look its
  tokens up, whatever batching, padding or fusion it does).
- *useful FLOPs*: 6 x non-embedding parameters per real token to train, 2 x to predict.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import re
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("SKLEARN_GPT2_SHARED_DATA", REPO.parent / "shared" / "data")
).resolve()
RESULTS = REPO / "benchmarks" / "results"
DOCS = REPO / "docs"

#: GPT-2 shapes: "124m" is GPT2Config()'s defaults (GPT-2 small, 124M parameters); "small"
#: checks the harness in minutes; "tiny" keeps the 20,000-text memory check short.
SHAPES: dict[str, dict[str, int]] = {
    "124m": {},
    "small": {"n_layer": 2, "n_embd": 128, "n_head": 2},
    "tiny": {"n_layer": 1, "n_embd": 64, "n_head": 1},
}


@dataclass(frozen=True)
class Workload:
    """One data set with its hyperparameters; every tool gets exactly this."""

    name: str
    train_file: str
    test_file: str
    n_train: int
    n_test: int
    max_length: int
    batch_size: int
    epochs: int = 1
    lr: float = 2e-5
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_split(file: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` rows of a shared CSV: all of them in file order, or a seeded random sample."""
    import pandas as pd

    frame = pd.read_csv(SHARED_DATA / file, keep_default_na=False)
    if n < len(frame):
        rows = np.random.default_rng(seed).permutation(len(frame))[:n]
        frame = frame.iloc[rows]
    return frame["text"].astype(str).tolist(), frame["label"].astype(str).tolist()


def load_workload(workload: Workload) -> tuple[list[str], list[str], list[str], list[str]]:
    """Train texts, train labels, test texts, test labels."""
    train = read_split(workload.train_file, workload.n_train, workload.seed)
    test = read_split(workload.test_file, workload.n_test, workload.seed + 1)
    return train[0], train[1], test[0], test[1]


def build_checkpoint(shape: str, directory: Path) -> Path:
    """Save a randomly initialised GPT-2 of ``shape`` with the real GPT-2 tokenizer.

    Speed does not depend on the weights, and no pretrained weights exist offline.
    """
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    if (directory / "config.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(SHARED_DATA / "gpt2_tokenizer")
    tokenizer.save_pretrained(directory)  # also writes tokenizer.json: fast loading for all
    config = GPT2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **SHAPES[shape],
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def real_token_counts(checkpoint: Path, texts: list[str], max_length: int) -> np.ndarray:
    """Tokens per text after truncation, without padding or added special tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return np.array([len(row) for row in ids], dtype=np.int64)


def model_sizes(checkpoint: Path) -> dict[str, int]:
    """Parameter counts of the checkpoint's transformer: all, and without the embeddings."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(checkpoint)
    total = sum(p.numel() for p in model.parameters())
    embeddings = sum(
        p.numel()
        for module in model.modules()
        if isinstance(module, torch.nn.Embedding)
        for p in module.parameters()
    )
    return {
        "parameters": total,
        "non_embedding_parameters": total - embeddings,
        "vocab_size": int(model.config.vocab_size),
    }


@contextlib.contextmanager
def count_computed_tokens(vocab_size: int) -> Iterator[dict[str, int]]:
    """Count token positions looked up in any vocabulary-sized embedding while active."""
    import torch

    counter = {"tokens": 0, "calls": 0}
    original = torch.nn.Embedding.forward

    @functools.wraps(original)
    def counting(self: torch.nn.Embedding, input: torch.Tensor) -> torch.Tensor:
        if self.num_embeddings == vocab_size:
            counter["tokens"] += int(input.numel())
            counter["calls"] += 1
        return original(self, input)

    torch.nn.Embedding.forward = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        torch.nn.Embedding.forward = original  # type: ignore[method-assign]


def matmul_gflops(dtype_name: str, size: int, seconds: float) -> float:
    """GFLOP/s of a ``size`` x ``size`` matrix product repeated for about ``seconds``."""
    import torch

    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    a @ b  # warm-up: thread pool, kernels
    count, start = 0, time.perf_counter()
    while True:
        a @ b
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return 2 * size**3 * count / elapsed / 1e9


def measure_ceiling(precision: str) -> dict[str, float]:
    """The machine's matrix-product rate now, at ``precision`` (and always in float32).

    bfloat16 is measured on a small product for a short time: without native support it is
    emulated and hundreds of times slower than float32.
    """
    rates = {"float32": matmul_gflops("float32", 2048, 1.5)}
    if precision == "bfloat16":
        rates["bfloat16"] = matmul_gflops("bfloat16", 512, 1.0)
    return rates


# ---------------------------------------------------------------- memory
def _status_mb(field: str) -> float | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def rss_mb() -> float | None:
    """Resident memory of this process now, in MiB."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """High-water mark of resident memory (since start or the last reset), in MiB."""
    peak = _status_mb("VmHWM")
    if peak is None:  # not Linux: ru_maxrss never resets (KiB on Linux, bytes on macOS)
        scale = 1 / 1024 / 1024 if platform.system() == "Darwin" else 1 / 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return peak


def reset_peak_rss() -> bool:
    """Reset the high-water mark (Linux >= 4.0); ``False`` where it cannot be reset."""
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds() -> float:
    """CPU time used by this process so far, all threads, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- machine
def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def git_revision() -> str:
    """The repository's commit, with ``+dirty`` when tracked files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_info() -> dict[str, Any]:
    """CPU, core count, bfloat16 support and library versions, for the report."""
    import sklearn
    import skorch
    import torch
    import transformers

    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        match = re.search(
            r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE
        )
        model = match.group(1).strip() if match else model
    flags = cpu_flags()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else os.cpu_count(),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def native_bfloat16(device: str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 natively (the documented rule of ``precision="auto"``)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def expected_precision(requested: str, device: str = "cpu") -> str:
    """What ``precision=requested`` runs in on ``device``, as docs/precision.md states it.

    Jobs check it against the fitted ``runtime_.precision`` rather than trust it.
    """
    if requested != "auto":
        return requested
    return "bfloat16" if native_bfloat16(device) else "float32"


def capabilities(threads: int | None = None) -> str:
    """The machine in one line: CPU, cores, bfloat16 instructions, threads, torch, GPU."""
    import torch

    info = machine_info()
    flags = ", ".join(
        f"{flag} {'yes' if info[flag] else 'no'}"
        for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    )
    if torch.cuda.is_available():
        gpu = f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name()}"
    else:
        gpu = "no CUDA GPU"
    return (
        f"Machine: {info['cpu']}; {info['usable_cpus']} usable of {info['logical_cpus']} "
        f"logical cores; {flags}; torch {info['torch']} with "
        f"{threads or torch.get_num_threads()} threads; transformers {info['transformers']}, "
        f"skorch {info['skorch']}, scikit-learn {info['sklearn']}; {gpu}; {info['date']}"
    )


class Phase:
    """Wall time, CPU time and peak memory of one phase (fit or predict)."""

    def __enter__(self) -> Phase:
        self.peak_resettable = reset_peak_rss()
        self.rss_before_mb = rss_mb()
        self._cpu = cpu_seconds()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = cpu_seconds() - self._cpu
        self.peak_rss_mb = peak_rss_mb()

    def record(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}_s": self.seconds,
            f"{prefix}_cpu_s": self.cpu_seconds,
            f"{prefix}_rss_before_mb": self.rss_before_mb,
            f"{prefix}_peak_rss_mb": self.peak_rss_mb,
            "peak_rss_resettable": self.peak_resettable,
        }


def measure(phase: str, action: Any) -> dict[str, Any]:
    """Run ``action()`` as one :class:`Phase` and return its record."""
    with Phase() as timing:
        action()
    return timing.record(phase)
