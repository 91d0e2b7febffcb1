"""Write tests/artifacts/v0_2_0 with sklearn-gpt2 0.2.0 (run once, from a 0.2.0 checkout).

Usage: python tests/artifacts/make_v0_2_0.py
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import joblib
import skops.io as sio
import torch

import sklearn_gpt2
from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier
from sklearn_gpt2.datasets import build_tiny_gpt2, load_demo

torch.set_num_threads(1)
OUT = Path(__file__).parent / "v0_2_0"
TEXTS = ["a wonderful film", "dull and tedious", "", "the plot was fine, the cast superb!"]


def main() -> None:
    assert sklearn_gpt2.__version__ == "0.2.0", sklearn_gpt2.__version__
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    X, y = load_demo()
    X, y = list(X)[:40], list(y)[:40]
    (OUT / "train.json").write_text(json.dumps({"texts": X, "labels": y}))
    # The base every artifact was fitted on, shipped so saves by reference can be loaded.
    base = build_tiny_gpt2(
        OUT / "base", X, vocab_size=300, n_layer=1, n_head=2, n_embd=16, n_positions=64
    )
    expected: dict[str, dict] = {}
    common = dict(max_length=32, max_epochs=2, batch_size=8, random_state=0, precision="float32")
    for tuning, lr in [("full", 1e-3), ("lora", 1e-2), ("head", 1e-1)]:
        clf = GPT2SequenceClassifier("base", tuning=tuning, lr=lr, **common)
        cwd = os.getcwd()
        os.chdir(OUT)  # a relative base, so the artifacts do not name this machine's paths
        try:
            clf.fit(X, y)
            name = f"sequence_{tuning}"
            joblib.dump(clf, f"{name}.joblib")
            sio.dump(clf, f"{name}.skops")
            clf.save_pretrained(f"{name}_dir")
            if tuning != "full":
                clf.save_pretrained(f"{name}_ref", base="reference")
        finally:
            os.chdir(cwd)
        expected[name] = {
            "classes": clf.classes_.tolist(),
            "proba": clf.predict_proba(TEXTS).tolist(),
        }
    prompt = GPT2PromptClassifier(
        "base",
        template="Review: {text}\nSentiment:",
        max_length=48,
        max_epochs=1,
        lr=1e-3,
        batch_size=8,
        random_state=0,
        precision="float32",
    )
    cwd = os.getcwd()
    os.chdir(OUT)
    try:
        prompt.fit(X, y)
        joblib.dump(prompt, "prompt.joblib")
        sio.dump(prompt, "prompt.skops")
        prompt.save_pretrained("prompt_dir")
    finally:
        os.chdir(cwd)
    expected["prompt"] = {
        "classes": prompt.classes_.tolist(),
        "proba": prompt.predict_proba(TEXTS).tolist(),
    }
    (OUT / "expected.json").write_text(json.dumps({"texts": TEXTS, "models": expected}, indent=1))
    print(sorted(p.name for p in OUT.iterdir()), base)


if __name__ == "__main__":
    main()
