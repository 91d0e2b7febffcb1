"""The ``search`` job: a grid search with our per-process caches, and without them."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from ._common import SHAPES, cpu_seconds, read_split
from ._harness import Context, Job, Result, Spec


def _naive_estimator() -> type:
    """Our estimator without its per-process caches: every fit reads the checkpoint from disk
    and tokenizes its texts again, as a tool without those caches does."""
    import sklearn_gpt2
    from sklearn_gpt2 import GPT2SequenceClassifier

    class NaiveGPT2SequenceClassifier(GPT2SequenceClassifier):
        def fit(self, X: Any, y: Any, **fit_params: Any) -> Any:
            sklearn_gpt2.clear_checkpoint_cache()
            return super().fit(X, y, **fit_params)

    return NaiveGPT2SequenceClassifier


class SearchJob(Job):
    name = "search"
    summary = "GridSearchCV wall time with our caches and without them (cached vs naive)"
    smallest = ("--search-texts", "24", "--search-shape", "tiny")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--search-texts", type=int, default=400, help="SST-2 sentences; 0 skips the job"
        )
        parser.add_argument(
            "--search-shape",
            choices=sorted(SHAPES),
            default="small",
            help="GPT-2 shape of the grid search (default: %(default)s)",
        )

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        if not args.search_texts:
            return []
        checkpoint = str(context.checkpoint(args.search_shape))
        return [
            {
                "kind": self.name,
                "name": f"search__{variant}",
                "variant": variant,
                "shape": args.search_shape,
                "checkpoint": checkpoint,
                "n_texts": args.search_texts,
                "lrs": [2e-5, 5e-5],
                "max_lengths": [32, 64],
                "folds": 3,
                "batch_size": 32,
            }
            for variant in ("cached", "naive")
        ]

    def run(self, spec: Spec) -> Result:
        """Time the search; count checkpoint reads and texts tokenized through transformers."""
        from unittest import mock

        from sklearn.model_selection import GridSearchCV
        from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

        import sklearn_gpt2
        from sklearn_gpt2 import GPT2SequenceClassifier

        texts, labels = read_split("sst2/train.csv", spec["n_texts"], seed=0)
        estimator = _naive_estimator() if spec["variant"] == "naive" else GPT2SequenceClassifier
        search = GridSearchCV(
            estimator(
                spec["checkpoint"], batch_size=spec["batch_size"], max_epochs=1, random_state=0
            ),
            {"lr": spec["lrs"], "max_length": spec["max_lengths"]},
            cv=spec["folds"],
            n_jobs=1,
        )
        sklearn_gpt2.clear_checkpoint_cache()  # both variants start cold
        tokenized: Counter[int] = Counter()
        tokenizer_call = PreTrainedTokenizerBase.__call__

        def counting(self: Any, text: Any = None, *args: Any, **kwargs: Any) -> Any:
            # Batches of whole texts (truncated to a max_length), not label words or prompts.
            if isinstance(text, list) and kwargs.get("truncation"):
                tokenized[kwargs.get("max_length")] += len(text)
            return tokenizer_call(self, text, *args, **kwargs)

        # Spies on transformers' public entry points: they still do their work, and count.
        with (
            mock.patch.object(
                AutoModelForSequenceClassification,
                "from_pretrained",
                wraps=AutoModelForSequenceClassification.from_pretrained,
            ) as loads,
            mock.patch.object(PreTrainedTokenizerBase, "__call__", counting),
        ):
            cpu, start = cpu_seconds(), time.perf_counter()
            search.fit(texts, labels)
            elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        return {
            "search_s": elapsed,
            "search_cpu_s": cpu,
            "n_fits": len(search.cv_results_["params"]) * spec["folds"] + 1,
            "checkpoint_loads": loads.call_count,
            "texts_tokenized": dict(tokenized),
            "n_texts": len(texts),
            "best_params": search.best_params_,
        }

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        from ._report_extras import search_section

        return search_section(results)
