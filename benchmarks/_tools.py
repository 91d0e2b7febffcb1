"""The five tools compared, each as ``fit(texts, labels)`` / ``predict(texts) -> labels``.

Each anchor is written the way its own documentation or tutorial writes it, with the shared
hyperparameters (learning rate, batch size, epochs, ``max_length``) and nothing tuned:

- ``tutorial``: the "GPT2 for text classification" tutorial loop: left padding with EOS as the
  pad token, a collator that pads each batch with ``tokenizer.pad``, AdamW (lr, eps 1e-8), a
  linear schedule from ``get_linear_schedule_with_warmup``, gradient clipping at 1.0, plain
  float32; prediction under ``torch.no_grad``.
- ``skorch``: skorch's Hugging Face recipe: a Pipeline of ``HuggingfacePretrainedTokenizer``
  (which pads every text to ``max_length``) and a ``NeuralNetClassifier`` around a module that
  returns the logits, with CrossEntropyLoss, the same schedule and clipping, no validation split.
- ``trainer``: the Hugging Face ``Trainer`` with ``DataCollatorWithPadding`` and default
  ``TrainingArguments`` apart from batch size, epochs, learning rate, and no reporting/saving.
- ``pipeline``: ``transformers.pipeline("text-classification")`` at the same batch size
  (prediction only; its model is loaded before the clock starts).
- ``ours``: ``GPT2SequenceClassifier`` with ``precision="auto"``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._common import Workload, expected_precision

TOOLS = ("tutorial", "skorch", "trainer", "pipeline", "ours")
PREDICT_ONLY = {"pipeline"}


def _gpt2_tokenizer(checkpoint: Path) -> Any:
    """The tokenizer set up as the GPT-2 tutorials do: EOS pads, on the left."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _gpt2(checkpoint: Path, num_labels: int) -> tuple[Any, Any]:
    """Tokenizer and classifier, with the model told which id pads."""
    from transformers import GPT2ForSequenceClassification

    tokenizer = _gpt2_tokenizer(checkpoint)
    model = GPT2ForSequenceClassification.from_pretrained(checkpoint, num_labels=num_labels)
    model.config.pad_token_id = model.config.eos_token_id
    return tokenizer, model


class _Tool:
    """Shared bookkeeping: the workload, the classes, the precision it computes in."""

    precision = "float32"

    def __init__(self, checkpoint: Path, workload: Workload) -> None:
        self.checkpoint = checkpoint
        self.workload = workload
        self.classes_: np.ndarray = np.array([])

    def encode_labels(self, labels: list[str]) -> np.ndarray:
        self.classes_, indices = np.unique(labels, return_inverse=True)
        return indices

    def prepare(self, n_classes: int) -> None:
        """Load what a predict-only tool needs, before the clock starts."""


class Tutorial(_Tool):
    def _collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        labels = [feature.pop("labels") for feature in features if "labels" in feature]
        batch = dict(self.tokenizer.pad(features, padding=True, return_tensors="pt"))
        if labels:
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch

    def _features(self, texts: list[str], labels: np.ndarray | None) -> list[dict[str, Any]]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.workload.max_length)
        features = [
            {"input_ids": ids, "attention_mask": mask}
            for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
        ]
        if labels is not None:
            for feature, label in zip(features, labels, strict=True):
                feature["labels"] = int(label)
        return features

    def fit(self, texts: list[str], labels: list[str]) -> None:
        from torch.utils.data import DataLoader
        from transformers import get_linear_schedule_with_warmup

        y = self.encode_labels(labels)
        self.tokenizer, self.model = _gpt2(self.checkpoint, len(self.classes_))
        loader = DataLoader(
            self._features(texts, y),
            batch_size=self.workload.batch_size,
            shuffle=True,
            collate_fn=self._collate,
        )
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.workload.lr, eps=1e-8)
        total_steps = len(loader) * self.workload.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, 0, total_steps)
        self.model.train()
        for _ in range(self.workload.epochs):
            for batch in loader:
                self.model.zero_grad()
                loss = self.model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()

    def predict(self, texts: list[str]) -> np.ndarray:
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self._features(texts, None),
            batch_size=self.workload.batch_size,
            collate_fn=self._collate,
        )
        self.model.eval()
        predictions = []
        with torch.no_grad():
            for batch in loader:
                predictions.append(self.model(**batch).logits.argmax(-1).numpy())
        return self.classes_[np.concatenate(predictions)]


class _LogitsModule(nn.Module):
    """What skorch's Hugging Face notebook wraps around a transformers model."""

    def __init__(self, name: str, num_labels: int) -> None:
        super().__init__()
        _, self.model = _gpt2(Path(name), num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class SkorchPipeline(_Tool):
    def fit(self, texts: list[str], labels: list[str]) -> None:
        from sklearn.pipeline import Pipeline
        from skorch import NeuralNetClassifier
        from skorch.callbacks import GradientNormClipping, LRScheduler
        from skorch.hf import HuggingfacePretrainedTokenizer
        from torch.optim.lr_scheduler import LambdaLR

        y = self.encode_labels(labels)
        tokenizer = _gpt2_tokenizer(self.checkpoint)
        w = self.workload
        total_steps = -(-len(texts) // w.batch_size) * w.epochs
        self.pipeline = Pipeline(
            [
                ("tokenizer", HuggingfacePretrainedTokenizer(tokenizer, max_length=w.max_length)),
                (
                    "net",
                    NeuralNetClassifier(
                        _LogitsModule,
                        module__name=str(self.checkpoint),
                        module__num_labels=len(self.classes_),
                        criterion=nn.CrossEntropyLoss,
                        optimizer=torch.optim.AdamW,
                        optimizer__eps=1e-8,
                        lr=w.lr,
                        batch_size=w.batch_size,
                        max_epochs=w.epochs,
                        train_split=None,
                        iterator_train__shuffle=True,
                        callbacks=[
                            LRScheduler(
                                LambdaLR,
                                lr_lambda=lambda step: max(0.0, 1 - step / total_steps),
                                step_every="batch",
                            ),
                            GradientNormClipping(1.0),
                        ],
                        device="cpu",
                        verbose=0,
                    ),
                ),
            ]
        )
        self.pipeline.fit(texts, y)

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.classes_[self.pipeline.predict(texts)]


class HFTrainer(Tutorial):
    """The Trainer reuses the tutorial's tokenization into unpadded features."""

    def fit(self, texts: list[str], labels: list[str]) -> None:
        from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

        y = self.encode_labels(labels)
        self.tokenizer, model = _gpt2(self.checkpoint, len(self.classes_))
        self._output = tempfile.TemporaryDirectory()
        w = self.workload
        args = TrainingArguments(
            output_dir=self._output.name,
            per_device_train_batch_size=w.batch_size,
            per_device_eval_batch_size=w.batch_size,
            num_train_epochs=w.epochs,
            learning_rate=w.lr,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            seed=w.seed,
        )
        self.trainer = Trainer(
            model=model,
            args=args,
            train_dataset=self._features(texts, y),
            data_collator=DataCollatorWithPadding(self.tokenizer),
            processing_class=self.tokenizer,
        )
        self.trainer.train()

    def predict(self, texts: list[str]) -> np.ndarray:
        output = self.trainer.predict(self._features(texts, None))
        return self.classes_[np.asarray(output.predictions).argmax(-1)]


class HFPipeline(_Tool):
    def prepare(self, n_classes: int) -> None:
        from transformers import pipeline

        self.classes_ = np.arange(n_classes)
        tokenizer, model = _gpt2(self.checkpoint, n_classes)
        self.pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")

    def predict(self, texts: list[str]) -> np.ndarray:
        outputs = self.pipe(
            texts,
            batch_size=self.workload.batch_size,
            truncation=True,
            max_length=self.workload.max_length,
        )
        label2id = self.pipe.model.config.label2id
        return self.classes_[[label2id[output["label"]] for output in outputs]]


class Ours(_Tool):
    def __init__(self, checkpoint: Path, workload: Workload) -> None:
        super().__init__(checkpoint, workload)
        # What "auto" runs in here (to measure the matching ceiling); the fit says for sure.
        self.precision = expected_precision("auto", "cpu")

    def fit(self, texts: list[str], labels: list[str]) -> None:
        from sklearn_gpt2 import GPT2SequenceClassifier

        w = self.workload
        self.clf = GPT2SequenceClassifier(
            str(self.checkpoint),
            max_length=w.max_length,
            batch_size=w.batch_size,
            max_epochs=w.epochs,
            lr=w.lr,
            precision="auto",
            random_state=w.seed,
        ).fit(texts, labels)
        self.precision = self.clf.runtime_.precision

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.clf.predict(texts)


def make_tool(name: str, checkpoint: str | Path, workload: Workload) -> _Tool:
    classes = {
        "tutorial": Tutorial,
        "skorch": SkorchPipeline,
        "trainer": HFTrainer,
        "pipeline": HFPipeline,
        "ours": Ours,
    }
    return classes[name](Path(checkpoint), workload)
