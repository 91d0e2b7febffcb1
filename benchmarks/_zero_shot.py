"""The ``zero-shot`` job: GPT2PromptClassifier against skorch's ZeroShotClassifier, side by side."""

from __future__ import annotations

import argparse
import time
from typing import Any, ClassVar

import numpy as np

from ._common import cpu_seconds, read_split
from ._harness import Context, Job, Result, Spec

#: The prompt and label words both tools get; skorch scores labels exactly as written, so its
#: classes carry GPT-2's leading space, which ours adds by itself.
TEMPLATE = "Review: {text}\nSentiment:"
LABEL_WORDS = {
    "one-token": {"negative": "negative", "positive": "positive"},
    "two-token": {"negative": "very negative", "positive": "very positive"},
}


def _timed(predict: Any, texts: list[str]) -> tuple[np.ndarray, float, float]:
    cpu, start = cpu_seconds(), time.perf_counter()
    proba = predict(texts)
    return np.asarray(proba), time.perf_counter() - start, cpu_seconds() - cpu


def run_zero_shot(spec: Spec) -> Result:
    """Texts per second of both tools on the same checkpoint, texts and prompt; and agreement."""
    from skorch.llm import ZeroShotClassifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sklearn_gpt2 import GPT2PromptClassifier

    texts, labels = read_split(spec["file"], spec["n_texts"], seed=0)
    words = LABEL_WORDS[spec["labels"]]
    ours = GPT2PromptClassifier(
        spec["checkpoint"],
        template=TEMPLATE,
        label_words=words,
        max_length=spec["max_length"],
        batch_size=spec["batch_size"],
        precision=spec["precision"],
    ).fit(texts, labels)
    model = AutoModelForCausalLM.from_pretrained(spec["checkpoint"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(spec["checkpoint"])
    skorch = ZeroShotClassifier(model=model, tokenizer=tokenizer, prompt=TEMPLATE)
    skorch.fit(None, [" " + word for word in words.values()])
    ours.predict_proba(texts[:2])  # warm both up: first calls allocate
    skorch.predict_proba(texts[-2:])
    n_anchor = spec["n_anchor_texts"]
    rounds, theirs = [], []
    for round_ in range(spec["rounds"]):  # alternate, so both see the same machine load
        # skorch caches the scores of every prompt it has seen: give it new texts each round.
        anchor_texts = texts[round_ * n_anchor : (round_ + 1) * n_anchor]
        proba_theirs, skorch_s, skorch_cpu = _timed(skorch.predict_proba, anchor_texts)
        theirs.append(proba_theirs)
        proba, ours_s, ours_cpu = _timed(ours.predict_proba, texts)
        rounds.append(
            {
                "ours_texts_per_s": len(texts) / ours_s,
                "skorch_texts_per_s": len(anchor_texts) / skorch_s,
                "ours_cpu_s": ours_cpu,
                "skorch_cpu_s": skorch_cpu,
            }
        )
    best_ours = max(r["ours_texts_per_s"] for r in rounds)
    best_skorch = max(r["skorch_texts_per_s"] for r in rounds)
    theirs_all = np.vstack(theirs)
    mine = proba[: len(theirs_all)]
    return {
        "template": TEMPLATE,
        "label_words": words,
        "label_tokens": [
            len(tokenizer(" " + word, add_special_tokens=False)["input_ids"])
            for word in words.values()
        ],
        "precision": ours.runtime_.precision,
        "n_texts": len(texts),
        "n_anchor_texts": len(theirs_all),
        "ours_texts_per_s": best_ours,
        "skorch_texts_per_s": best_skorch,
        "ratio": best_ours / best_skorch,
        "rounds": rounds,
        "same_ranking": float(np.mean(mine.argmax(1) == theirs_all.argmax(1))),
        "max_abs_difference": float(np.abs(mine - theirs_all).max()),
        "example": {"text": texts[0], "ours": mine[0].tolist(), "skorch": theirs_all[0].tolist()},
    }


class ZeroShotJob(Job):
    name = "zero-shot"
    summary = "GPT2PromptClassifier zero-shot beside skorch's ZeroShotClassifier"
    uses_workloads = True
    smallest = ("--shape", "tiny", "--zero-shot-texts", "12")
    defaults: ClassVar[dict[str, Any]] = {"zero_shot_texts": 96}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--zero-shot-texts",
            type=int,
            default=0,
            help="SST-2 dev texts GPT2PromptClassifier classifies zero-shot, beside skorch's "
            "ZeroShotClassifier on a quarter of them per round (GPT-2 shape --shape); 0 skips it",
        )

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        """One- and two-token labels; ours in float32 (as skorch runs) and at "auto"."""
        if not args.zero_shot_texts:
            return []
        checkpoint = str(context.checkpoint(args.shape))
        return [
            {
                "kind": self.name,
                "name": f"zero_shot__{labels}__{precision}",
                "shape": args.shape,
                "checkpoint": checkpoint,
                "file": "sst2/dev.csv",
                "n_texts": args.zero_shot_texts,
                "n_anchor_texts": max(1, args.zero_shot_texts // 4),  # 3 rounds: new texts each
                "labels": labels,
                "max_length": 128,
                "batch_size": 32,
                "precision": precision,
                "rounds": 3,
            }
            for labels in ("one-token", "two-token")
            for precision in ("float32", "auto")
        ]

    def run(self, spec: Spec) -> Result:
        return run_zero_shot(spec)

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        from ._report_extras import zero_shot_section

        return zero_shot_section(results)
