"""Extra jobs: the grid-search saving, the memory shape of prediction, the training modes."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from _common import SHARED_DATA, cpu_seconds, peak_rss_mb, read_split, reset_peak_rss, rss_mb
from transformers import AutoModelForSequenceClassification

import sklearn_gpt2
from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.text import tokenize as tokenize_module


class NaiveGPT2SequenceClassifier(GPT2SequenceClassifier):
    """Our estimator without its per-process caches: every fit reads the checkpoint from disk
    and tokenizes its texts again, as a tool without those caches does."""

    def fit(self, X: Any, y: Any, **fit_params: Any) -> NaiveGPT2SequenceClassifier:
        sklearn_gpt2.clear_checkpoint_cache()
        return super().fit(X, y, **fit_params)  # type: ignore[return-value]


def run_search(spec: dict[str, Any]) -> dict[str, Any]:
    """Time a GridSearchCV over learning rates x max lengths x folds, cached or naive."""
    from sklearn.model_selection import GridSearchCV

    texts, labels = read_split("sst2/train.csv", spec["n_texts"], seed=0)
    estimator_class = (
        NaiveGPT2SequenceClassifier if spec["variant"] == "naive" else GPT2SequenceClassifier
    )
    search = GridSearchCV(
        estimator_class(
            spec["checkpoint"], batch_size=spec["batch_size"], max_epochs=1, random_state=0
        ),
        {"lr": spec["lrs"], "max_length": spec["max_lengths"]},
        cv=spec["folds"],
        n_jobs=1,
    )
    sklearn_gpt2.clear_checkpoint_cache()  # both variants start cold
    # Spies wrap the real functions (they still do their work) and only count the calls.
    with (
        mock.patch.object(
            AutoModelForSequenceClassification,
            "from_pretrained",
            wraps=AutoModelForSequenceClassification.from_pretrained,
        ) as loads,
        mock.patch.object(tokenize_module, "tokenize", wraps=tokenize_module.tokenize) as tokenize,
    ):
        cpu, start = cpu_seconds(), time.perf_counter()
        search.fit(texts, labels)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    tokenized: Counter[int] = Counter()
    for call in tokenize.call_args_list:
        _, batch, token_spec = call.args
        tokenized[token_spec.max_length] += len(batch)
    return {
        "search_s": elapsed,
        "search_cpu_s": cpu,
        "n_fits": len(search.cv_results_["params"]) * spec["folds"] + 1,
        "checkpoint_loads": loads.call_count,
        "texts_tokenized": dict(tokenized),
        "n_texts": len(texts),
        "best_params": search.best_params_,
    }


def _imdb_sample(n: int, seed: int) -> list[str]:
    """``n`` IMDB-length texts drawn with replacement from the shared IMDB sample."""
    pool = read_split("imdb_sample/train.csv", 10**9, seed)[0]
    pool += read_split("imdb_sample/test.csv", 10**9, seed)[0]
    rows = np.random.default_rng(seed).integers(0, len(pool), size=n)
    return [pool[i] for i in rows]


def _model_mb(model: torch.nn.Module) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of predicting many long texts: ours, or one padded tensor of everything."""
    texts = _imdb_sample(spec["n_texts"], seed=0)
    max_length, batch_size = spec["max_length"], spec["batch_size"]
    result: dict[str, Any] = {"n_texts": len(texts), "rss_with_texts_mb": rss_mb()}
    if spec["variant"] == "ours":
        fit_x, fit_y = read_split("imdb_sample/train.csv", spec["fit_texts"], seed=0)
        clf = GPT2SequenceClassifier(
            spec["checkpoint"],
            max_length=max_length,
            batch_size=batch_size,
            max_epochs=1,
            random_state=0,
        )
        result |= _measure("fit", lambda: clf.fit(fit_x, fit_y))
        result |= _measure("predict", lambda: clf.predict(texts))
        result["model_mb"] = _model_mb(clf.module_)
        token_ids = clf.get_dataset(texts).token_ids
        result["fit_texts"] = len(fit_x)
    else:
        from _tools import _gpt2

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

        result |= _measure("predict", predict_padded)
        result["model_mb"] = _model_mb(model)
        token_ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    result["real_tokens"] = int(sum(len(ids) for ids in token_ids))
    # One batch of padded int64 ids + mask, and the same for the whole input.
    result["batch_input_mb"] = batch_size * max_length * 16 / 2**20
    result["padded_input_mb"] = len(texts) * max_length * 16 / 2**20
    result["shared_data"] = str(SHARED_DATA)
    return result


def _measure(phase: str, action: Any) -> dict[str, Any]:
    resettable = reset_peak_rss()
    before, cpu, start = rss_mb(), cpu_seconds(), time.perf_counter()
    action()
    return {
        f"{phase}_s": time.perf_counter() - start,
        f"{phase}_cpu_s": cpu_seconds() - cpu,
        f"{phase}_rss_before_mb": before,
        f"{phase}_peak_rss_mb": peak_rss_mb(),
        "peak_rss_resettable": resettable,
    }


def run_modes(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit one training mode for some epochs: wall time, time per epoch, peak memory."""
    from _common import Workload, load_workload

    workload = Workload(**spec["workload"])
    train_x, train_y, test_x, test_y = load_workload(workload)
    clf = GPT2SequenceClassifier(
        spec["checkpoint"],
        tuning=spec["tuning"],
        lr=spec["lr"],
        max_length=workload.max_length,
        batch_size=workload.batch_size,
        max_epochs=spec["epochs"],
        precision="auto",
        random_state=0,
    )
    predictions: list[np.ndarray] = []
    result = _measure("fit", lambda: clf.fit(train_x, train_y))
    result |= _measure("predict", lambda: predictions.append(clf.predict(test_x)))
    parameters = list(clf.module_.parameters())
    return result | {
        "epoch_s": [float(row["dur"]) for row in clf.history],
        "precision": clf.runtime_.precision,
        "parameters": sum(p.numel() for p in parameters),
        "trainable_parameters": sum(p.numel() for p in parameters if p.requires_grad),
        # Random weights: accuracy is near chance; it only shows the fit ran end to end.
        "accuracy": float(np.mean(predictions[0] == np.asarray(test_y))),
    }
