"""The ``memory`` job: peak memory of predicting many long texts, ours against one padded tensor."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ._common import SHAPES, SHARED_DATA, measure, read_split, real_token_counts, rss_mb
from ._harness import Context, Job, Result, Spec


def _imdb_sample(n: int, seed: int) -> list[str]:
    """``n`` IMDB-length texts drawn with replacement from the shared IMDB sample."""
    pool = read_split("imdb_sample/train.csv", 10**9, seed)[0]
    pool += read_split("imdb_sample/test.csv", 10**9, seed)[0]
    rows = np.random.default_rng(seed).integers(0, len(pool), size=n)
    return [pool[i] for i in rows]


def _model_mb(model: Any) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


class MemoryJob(Job):
    name = "memory"
    summary = "peak memory of predicting many IMDB-length texts, ours against a padded tensor"
    smallest = ("--memory-texts", "64", "--memory-fit-texts", "16", "--memory-shape", "tiny")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--memory-texts", type=int, default=20_000, help="texts predicted; 0 skips the job"
        )
        parser.add_argument(
            "--memory-fit-texts", type=int, default=1000, help="IMDB reviews fitted first"
        )
        parser.add_argument(
            "--memory-shape",
            choices=sorted(SHAPES),
            default="tiny",
            help="GPT-2 shape (default: %(default)s: the point is how memory grows with the "
            "input, not speed)",
        )

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        if not args.memory_texts:
            return []
        checkpoint = str(context.checkpoint(args.memory_shape))
        return [
            {
                "kind": self.name,
                "name": f"memory__{variant}",
                "variant": variant,
                "shape": args.memory_shape,
                "checkpoint": checkpoint,
                "n_texts": args.memory_texts,
                "fit_texts": args.memory_fit_texts,
                "max_length": 256,
                "batch_size": 16,
                "uses_package": variant == "ours",
            }
            for variant in ("ours", "naive")
        ]

    def run(self, spec: Spec) -> Result:
        import torch

        texts = _imdb_sample(spec["n_texts"], seed=0)
        max_length, batch_size = spec["max_length"], spec["batch_size"]
        result: dict[str, Any] = {"n_texts": len(texts), "rss_with_texts_mb": rss_mb()}
        if spec["variant"] == "ours":
            from sklearn_gpt2 import GPT2SequenceClassifier

            fit_x, fit_y = read_split("imdb_sample/train.csv", spec["fit_texts"], seed=0)
            clf = GPT2SequenceClassifier(
                spec["checkpoint"],
                max_length=max_length,
                batch_size=batch_size,
                max_epochs=1,
                random_state=0,
            )
            result |= measure("fit", lambda: clf.fit(fit_x, fit_y))
            result |= measure("predict", lambda: clf.predict(texts))
            result["model_mb"] = _model_mb(clf.module_)
            result["fit_texts"] = len(fit_x)
        else:
            from ._tools import _gpt2

            tokenizer, model = _gpt2(Path(spec["checkpoint"]), 2)
            model.eval()

            def predict_padded() -> np.ndarray:
                encoded = tokenizer(
                    texts,
                    padding="max_length",
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                predictions = []
                with torch.no_grad():
                    for start in range(0, len(texts), batch_size):
                        part = slice(start, start + batch_size)
                        logits = model(
                            input_ids=encoded["input_ids"][part],
                            attention_mask=encoded["attention_mask"][part],
                        ).logits
                        predictions.append(logits.argmax(-1).numpy())
                return np.concatenate(predictions)

            result |= measure("predict", predict_padded)
            result["model_mb"] = _model_mb(model)
        counts = real_token_counts(Path(spec["checkpoint"]), texts, max_length)
        result["real_tokens"] = int(counts.sum())
        # One batch of padded int64 ids + mask, and the same for the whole input.
        result["batch_input_mb"] = batch_size * max_length * 16 / 2**20
        result["padded_input_mb"] = len(texts) * max_length * 16 / 2**20
        result["shared_data"] = str(SHARED_DATA)
        return result

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        from ._report_extras import memory_section

        return memory_section(results)
