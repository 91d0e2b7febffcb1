"""The ``gpu`` job: is the estimator ready for a CUDA GPU? Precisions, padding, save/load, speed.

On the GPU, with the 124M GPT-2 shape (``GPT2Config()`` defaults, random weights, the GPT-2
tokenizer): fits and predicts in float32, bfloat16 and float16 (float16 with loss scaling);
checks that a text's probabilities alone equal those in a padded batch; saves on the GPU and
loads in a process that sees no GPU (same predictions); and times our fit and predict beside
the tutorial loop (GPT2ForSequenceClassification, AdamW, a manual loop) on the same data and
batch size, as ratios. ``--device cpu --tiny`` runs the same logic on a CPU with a tiny model.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._common import SHAPES, SHARED_DATA, build_checkpoint
from ._harness import Context, Job, Result, Spec

#: Largest difference allowed between a text's probabilities alone and in a padded batch.
PADDING_TOLERANCE = {"float32": 1e-5, "bfloat16": 1e-4, "float16": 1e-3}
#: Largest difference allowed between the GPU's float32 probabilities and the CPU's.
CPU_TOLERANCE = 1e-4

_LOAD_ON_CPU = """
import json, sys
import numpy as np
from sklearn_gpt2 import GPT2SequenceClassifier
clf = GPT2SequenceClassifier.from_pretrained(sys.argv[1])
texts = json.loads(open(sys.argv[2]).read())
print(json.dumps({"device": str(clf.runtime_.device),
                  "proba": clf.predict_proba(texts).tolist()}))
"""


def _texts(n: int) -> tuple[list[str], list[str]]:
    """``n`` labelled SST-2 sentences, or the package's demo texts where SST-2 is absent."""
    if (SHARED_DATA / "sst2" / "train.csv").is_file():
        from ._common import read_split

        return read_split("sst2/train.csv", n, seed=0)
    from sklearn_gpt2.datasets import load_demo

    texts, labels = load_demo()
    return [texts[i % len(texts)] for i in range(n)], [labels[i % len(texts)] for i in range(n)]


def _checkpoint(shape: str, directory: Path) -> Path:
    """A random GPT-2 of ``shape``: the GPT-2 tokenizer if shared, else the tiny builder's."""
    if (SHARED_DATA / "gpt2_tokenizer").is_dir():
        return build_checkpoint(shape, directory)
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from sklearn_gpt2.datasets import build_tiny_gpt2

    tiny = build_tiny_gpt2(directory / "tiny-tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    tokenizer.save_pretrained(directory)
    config = GPT2Config(vocab_size=len(tokenizer), **SHAPES[shape])
    config.bos_token_id = config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


class TutorialLoop:
    """The transformers tutorial's loop: GPT2ForSequenceClassification, AdamW, clipping."""

    def __init__(self, checkpoint: str, device: str, max_length: int, batch_size: int) -> None:
        self.checkpoint, self.device = checkpoint, device
        self.max_length, self.batch_size = max_length, batch_size

    def _batches(self, texts: list[str], y: np.ndarray | None, shuffle: bool) -> Any:
        import torch

        order = np.random.default_rng(0).permutation(len(texts)) if shuffle else range(len(texts))
        order = list(order)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            if y is not None:
                batch["labels"] = torch.tensor(y[rows], device=self.device)
            yield batch

    def fit(self, texts: list[str], labels: list[str], lr: float) -> TutorialLoop:
        import torch
        from transformers import (
            AutoTokenizer,
            GPT2ForSequenceClassification,
            get_linear_schedule_with_warmup,
        )

        self.classes_, y = np.unique(labels, return_inverse=True)
        self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        self.tokenizer.padding_side = "left"
        self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = GPT2ForSequenceClassification.from_pretrained(
            self.checkpoint, num_labels=len(self.classes_)
        ).to(self.device)
        self.model.config.pad_token_id = self.tokenizer.eos_token_id
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, eps=1e-8)
        steps = -(-len(texts) // self.batch_size)
        scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps)
        self.model.train()
        for batch in self._batches(texts, y, shuffle=True):
            optimizer.zero_grad()
            self.model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
        return self

    def predict(self, texts: list[str]) -> np.ndarray:
        import torch

        self.model.eval()
        with torch.no_grad():
            predicted = [
                self.model(**batch).logits.argmax(-1).cpu().numpy()
                for batch in self._batches(texts, None, shuffle=False)
            ]
        return self.classes_[np.concatenate(predicted)]


def _timed(action: Any, device: str) -> tuple[Any, float]:
    _sync(device)
    start = time.perf_counter()
    value = action()
    _sync(device)
    return value, time.perf_counter() - start


def _padding_gap(clf: Any, texts: list[str]) -> float:
    """Largest change of a text's probabilities between alone and in one padded batch."""
    together = clf.predict_proba(texts)
    alone = np.vstack([clf.predict_proba([text]) for text in texts])
    return float(np.abs(together - alone).max())


def _load_on_cpu(directory: Path, texts: list[str]) -> dict[str, Any]:
    """Load a save in a fresh process that sees no GPU; its device and probabilities."""
    import json
    import os

    texts_file = directory.parent / "texts.json"
    texts_file.write_text(json.dumps(texts))
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_ON_CPU, str(directory), str(texts_file)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


class GpuJob(Job):
    name = "gpu"
    summary = (
        "GPU readiness: 124M in float32/bfloat16/float16, padding, GPU save -> CPU load, speed"
    )
    isolated = False
    smallest = ("--device", "cpu", "--tiny", "--texts", "32", "--predict-texts", "16")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
        parser.add_argument(
            "--tiny", action="store_true", help="a 1-layer, 64-wide GPT-2 instead of 124M"
        )
        parser.add_argument("--texts", type=int, default=1024, help="training texts per fit")
        parser.add_argument("--predict-texts", type=int, default=512, help="texts predicted")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--max-length", type=int, default=128)
        parser.add_argument("--lr", type=float, default=2e-5)

    def unavailable(self, args: argparse.Namespace) -> str | None:
        import torch

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            return (
                "gpu: no CUDA GPU on this machine (torch.cuda.is_available() is False), nothing "
                "run; to check the logic on a CPU: python benchmarks/run.py gpu --device cpu --tiny"
            )
        return None

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        shape = "tiny" if args.tiny else "124m"
        checkpoint = _checkpoint(shape, context.checkpoint_root / f"gpu-{shape}")
        options = ("device", "texts", "predict_texts", "batch_size", "max_length", "lr")
        return [
            {
                "kind": self.name,
                "name": f"gpu__{shape}",
                "shape": shape,
                "checkpoint": str(checkpoint),
            }
            | {key: getattr(args, key) for key in options}
        ]

    def run(self, spec: Spec) -> Result:
        import torch

        import sklearn_gpt2
        from sklearn_gpt2 import GPT2SequenceClassifier

        device = spec["device"]
        texts, labels = _texts(spec["texts"])
        test = texts[: spec["predict_texts"]]
        # Texts of very different lengths, so that a batch of them is mostly padding.
        probe = [*texts[:6], "ok", " ".join(texts[6:14])]
        shared = {"max_length": spec["max_length"], "batch_size": spec["batch_size"]}
        result: dict[str, Any] = {
            "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
            "n_texts": len(texts),
            "n_predict": len(test),
        }
        tutorial = TutorialLoop(spec["checkpoint"], device, **shared)
        tutorial.fit(texts[: 2 * spec["batch_size"]], labels[: 2 * spec["batch_size"]], spec["lr"])
        _timed(lambda: tutorial.predict(test[:32]), device)  # warm-up: CUDA context, kernels
        _, fit_s = _timed(lambda: tutorial.fit(texts, labels, spec["lr"]), device)
        _, predict_s = _timed(lambda: tutorial.predict(test), device)
        result["tutorial"] = {"fit_s": fit_s, "predict_s": predict_s}
        tutorial.model = None  # free its memory for ours
        rows, fitted = {}, {}
        for precision in ("float32", "bfloat16", "float16", "auto"):
            if precision == "float16" and not device.startswith("cuda"):
                rows[precision] = {"skipped": "float16 needs CUDA (refused on a CPU)"}
                continue
            clf = GPT2SequenceClassifier(
                spec["checkpoint"],
                precision=precision,
                device=device,
                max_epochs=1,
                lr=spec["lr"],
                random_state=0,
                **shared,
            )
            sklearn_gpt2.clear_checkpoint_cache()  # read from disk, as the tutorial does
            _, fit_s = _timed(lambda clf=clf: clf.fit(texts, labels), device)
            proba, predict_s = _timed(lambda clf=clf: clf.predict_proba(test), device)
            losses = [float(row["train_loss"]) for row in clf.history_]
            rows[precision] = {
                "ran_in": clf.runtime_.precision,
                "device": str(clf.runtime_.device),
                "fit_s": fit_s,
                "predict_s": predict_s,
                "train_loss": losses,
                "finite": bool(np.isfinite(proba).all() and np.isfinite(losses).all()),
                "padding_gap": _padding_gap(clf, probe),
            }
            fitted[precision] = clf
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        result["precisions"] = rows
        reference = fitted["float32"].predict_proba(probe)
        with tempfile.TemporaryDirectory(prefix="gpu-save-") as scratch:
            directory = Path(scratch) / "clf"
            fitted["float32"].save_pretrained(directory)
            loaded = _load_on_cpu(directory, probe)
        cpu_proba = np.asarray(loaded["proba"])
        result["save_load"] = {
            "loaded_on": loaded["device"],
            "max_abs_difference": float(np.abs(cpu_proba - reference).max()),
            "same_predictions": bool((cpu_proba.argmax(1) == reference.argmax(1)).all()),
        }
        return result

    def failed(self, results: list[Result]) -> list[str]:
        """The checks that did not hold, one line each."""
        problems = []
        for result in results:
            for precision, row in result["precisions"].items():
                if "skipped" in row:
                    continue
                expected = row["ran_in"] if precision == "auto" else precision
                tolerance = PADDING_TOLERANCE[expected]
                if row["ran_in"] != expected:
                    problems.append(f"{precision}: ran in {row['ran_in']}")
                if not row["finite"]:
                    problems.append(f"{precision}: non-finite loss or probabilities")
                if row["padding_gap"] > tolerance:
                    problems.append(
                        f"{precision}: alone vs batched differ by {row['padding_gap']:.1e} "
                        f"(allowed {tolerance:.0e})"
                    )
            save = result["save_load"]
            if save["loaded_on"] != "cpu" or not save["same_predictions"]:
                problems.append(f"saved on {result['spec']['device']}, loaded: {save}")
            elif save["max_abs_difference"] > CPU_TOLERANCE:
                problems.append(f"CPU load differs by {save['max_abs_difference']:.1e}")
        return problems

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        lines = []
        for result in results:
            spec, tutorial = result["spec"], result["tutorial"]
            lines += [
                f"## GPU check: {result['device_name']}, GPT-2 shape `{spec['shape']}`",
                "",
                f"{result['n_texts']} training texts, {result['n_predict']} predicted, batch "
                f"{spec['batch_size']}, max_length {spec['max_length']}, 1 epoch. Ratios: the "
                "tutorial loop's seconds (float32) over ours, measured in this run.",
                "",
                "| precision | ran in | fit s | predict s | fit ratio | predict ratio "
                "| alone vs batched | train loss |",
                "|---|---|---:|---:|---:|---:|---:|---:|",
                f"| tutorial loop | float32 | {tutorial['fit_s']:.2f} "
                f"| {tutorial['predict_s']:.2f} | 1.00x | 1.00x | | |",
            ]
            for precision, row in result["precisions"].items():
                if "skipped" in row:
                    lines.append(f"| {precision} | {row['skipped']} | | | | | | |")
                    continue
                lines.append(
                    f"| {precision} | {row['ran_in']} | {row['fit_s']:.2f} "
                    f"| {row['predict_s']:.2f} "
                    f"| {tutorial['fit_s'] / row['fit_s']:.2f}x "
                    f"| {tutorial['predict_s'] / row['predict_s']:.2f}x "
                    f"| {row['padding_gap']:.1e} | {row['train_loss'][-1]:.4f} |"
                )
            save = result["save_load"]
            lines += [
                "",
                f"Saved on `{spec['device']}`, loaded in a process without a GPU (on "
                f"`{save['loaded_on']}`): same predictions {save['same_predictions']}, largest "
                f"probability difference {save['max_abs_difference']:.1e}.",
                "",
            ]
        problems = self.failed(results)
        lines.append(
            "checks: " + ("all passed" if not problems else "FAILED: " + "; ".join(problems))
        )
        return lines
