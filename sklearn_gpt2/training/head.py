"""``tuning="head"``: a frozen backbone whose pooled features are computed once and cached.

Each text's pooled feature (the ``pooling`` parameter: by default what the model's own head
reads, GPT-2's last real token or BERT's pooled output) is computed once per (checkpoint,
tokenization, pooling, precision, device kind, text) and kept in the checkpoint's bounded
feature cache, so every fit on the checkpoint (the folds of a cross-validation, the
candidates of a grid search, ``partial_fit``) reuses it. A decoder reads each text once for
every ``max_length`` (see :mod:`.feature_pass`).

``fit`` solves the linear head as the convex problem it is (:mod:`.head_solver`: multinomial
logistic regression, L2 chosen by validation on the features, ``class_weight`` and
``sample_weight`` in the loss) and writes the solution into the model's head, so saving,
export and ``partial_fit`` see an ordinary head; ``lr`` and ``max_epochs`` do not change what
``fit`` finds. ``partial_fit`` trains that head further with skorch's epochs, as in the other
modes. A head that is not one linear layer trains with skorch's epochs in ``fit`` too. A
loaded classifier, which may lack its checkpoint, caches into a cache of its own.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

import numpy as np
import torch

from ..models.checkpoint import MAX_CACHED_FEATURE_VALUES
from ..models.pooling import resolved
from ..models.sequence import head_name
from ..text.rows import Rows
from ..text.tokenize import TokenCache
from . import feature_pass
from .dataset import FeatureCollator, TextDataset
from .head_solver import solve_linear_head
from .modes import TuningMode, set_trainable


def _check_finite_features(estimator: Any, features: np.ndarray) -> None:
    """Refuse features with NaN or infinity: the checkpoint, not the learning rate, is at fault."""
    bad = int((~np.isfinite(features).reshape(len(features), -1).all(axis=1)).sum())
    if bad:
        checkpoint = vars(estimator).get("_base_checkpoint_", estimator.model_name_or_path)
        raise ValueError(
            f"The features the checkpoint {str(checkpoint)!r} computes are not finite (NaN or "
            f"infinity) for {bad} of {len(features)} texts at "
            f"precision={estimator.runtime_.precision!r}: its weights are not finite or its "
            f"activations overflow, and no head can classify from them. Check the checkpoint's "
            f"weights, or use precision='float32'."
        )


def _scores(
    head: torch.nn.Module,
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None,
    name: str,
) -> dict[str, float]:
    """The (weighted) mean cross-entropy and the accuracy of ``head`` on some rows."""
    device = next(head.parameters()).device
    with torch.no_grad():
        logits = head(torch.from_numpy(features).to(device)).double().cpu()
    target = torch.from_numpy(labels)
    losses = torch.nn.functional.cross_entropy(logits, target, reduction="none").numpy()
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    loss = float((w * losses).sum() / max(float(w.sum()), 1e-300))
    accuracy = float((logits.argmax(dim=1) == target).double().mean())
    return {f"{name}_loss": loss, f"{name}_acc": accuracy}


class HeadTuning(TuningMode):
    """Train only the classification head, on features the frozen backbone computed once."""

    name = "head"
    saves_by_reference = True

    def bind_checkpoint(self, estimator: Any, checkpoint: Any) -> None:
        """Cache features in the checkpoint's cache, shared by every fit on it."""
        vars(estimator)["_feature_cache_"] = checkpoint.feature_cache

    def prepare(self, estimator: Any, module: Any) -> Any:
        """Freeze everything but the head."""
        prefix = head_name(module.model) + "."
        set_trainable(module.model, lambda name: name.startswith(prefix))
        return module

    def _cache(self, estimator: Any) -> TokenCache:
        cache = vars(estimator).get("_feature_cache_")
        if cache is None:  # a loaded classifier: its checkpoint may not exist here
            cache = TokenCache(MAX_CACHED_FEATURE_VALUES)
            vars(estimator)["_feature_cache_"] = cache
        return cache  # type: ignore[no-any-return]

    def features(self, estimator: Any, rows: Rows, texts: list[str]) -> list[np.ndarray]:
        """The pooled feature of each row (of ``texts``), computed only for rows not seen before.

        A feature depends on the row's tokens, the module's pooling and the precision and kind
        of device that computed it, so two fits whose rows share tokens (the folds of a
        cross-validation, a grid over ``max_length`` on short texts) share the feature. A
        decoder's missing features derive from one longer pass of each text.
        """
        module = estimator._net.module_
        runtime = estimator.runtime_
        context: Hashable = (runtime.precision, runtime.device.type)
        pooling = resolved(module.pooling, module.last_token_pooling)
        cache = self._cache(estimator)
        token_keys = [ids.tobytes() for ids in rows.token_ids]
        key: Hashable = (context, pooling)
        found: list[np.ndarray | None] = [cache.get((key, tokens)) for tokens in token_keys]  # type: ignore[arg-type]
        position = {t: i for i, t in enumerate(token_keys) if found[i] is None}
        if not position:
            return found  # type: ignore[return-value]
        missing = list(position)
        computed: dict[bytes, np.ndarray] = {}
        if module.pads_left and estimator._tokenization_spec().truncation == "head":
            # A decoder whose rows are the starts of their texts: derive them from one pass.
            text_of = [texts[int(rows.text_index[position[t]])] for t in missing]
            tokens_of = [rows.token_ids[position[t]] for t in missing]
            derived = feature_pass.derived_features(
                estimator, cache, context, tokens_of, text_of, pooling
            )
            computed = {missing[i]: feature for i, feature in derived.items()}
        rest = [t for t in missing if t not in computed]
        if rest:
            fresh = feature_pass.compute_features(
                module,
                Rows.one_per_text([rows.token_ids[position[t]] for t in rest]),
                runtime.device,
                runtime.autocast,
                estimator.batch_size,
                estimator.tokenizer_.pad_token_id,
            )
            computed.update(zip(rest, fresh, strict=True))
        _check_finite_features(estimator, np.stack([computed[t] for t in missing]))
        for tokens in missing:
            cache.put((key, tokens), computed[tokens])  # type: ignore[arg-type]
        return [computed[t] if f is None else f for t, f in zip(token_keys, found, strict=True)]

    def train(self, estimator: Any, texts: Any, label_indices: Any, weights: Any) -> None:
        """Solve the linear head on the cached features; write it into the model's head.

        The solution (see :mod:`.head_solver`) uses the training rows (all of them, or those
        ``validation_fraction`` leaves); ``history_`` gets one row with the training (and
        validation) loss and accuracy of the solved head, its ``l2_penalty`` and ``dur``.
        A head that is not one linear layer trains with skorch's epochs instead.
        """
        head = estimator._net.module_.head
        if not isinstance(head, torch.nn.Linear):
            super().train(estimator, texts, label_indices, weights)
            return
        start = time.perf_counter()
        net = estimator._net
        dataset = estimator._training_dataset(texts, label_indices, weights)
        train, valid = net.split_rows(dataset)
        features = np.stack(dataset.token_ids).astype(np.float32)
        labels = dataset.labels.astype(np.int64)
        row_weights = dataset.weights
        solution = solve_linear_head(
            features[train],
            labels[train],
            estimator.n_classes_,
            None if row_weights is None else row_weights[train],
            intercept=head.bias is not None,
            seed=int(estimator._seed_),
        )
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(solution.weight))
            if head.bias is not None:
                head.bias.copy_(torch.from_numpy(solution.bias))
        scores: dict[str, Any] = {"l2_penalty": solution.penalty, "train_rows": len(train)}
        for name, part in (("train", train), ("valid", valid)):
            if part is not None and len(part):
                w = None if row_weights is None else row_weights[part]
                scores.update(_scores(head, features[part], labels[part], w, name))
        net.history.new_epoch()
        net.history.record("epoch", len(net.history))
        for name, value in scores.items():
            net.history.record(name, value)
        net.history.record("dur", time.perf_counter() - start)

    def dataset(self, estimator: Any, texts: Any, y: Any) -> TextDataset:
        """Training rows of cached features, each with its text's class index."""
        texts = list(texts)
        rows = estimator._rows(texts)
        targets = None if y is None else np.asarray(y)[rows.text_index]
        return TextDataset(self.features(estimator, rows, texts), targets, rows.text_index)

    def collator(self, estimator: Any, weighted: bool = False) -> FeatureCollator:
        """Stack feature vectors (no padding: they all have the same width)."""
        return FeatureCollator(weighted)

    def row_proba(self, estimator: Any, rows: Rows, texts: Any) -> np.ndarray:
        """Probabilities of each row from its cached feature, the head run batch by batch."""
        features = (
            np.stack(self.features(estimator, rows, list(texts))) if len(rows) else np.empty((0, 0))
        )
        module = estimator._net.module_
        device = estimator.runtime_.device
        parts = [
            estimator._proba_from_outputs(
                module.classify(
                    torch.from_numpy(features[start : start + estimator.batch_size]).to(device)
                )
            )
            for start in range(0, len(features), estimator.batch_size)
        ]
        return np.concatenate(parts) if parts else np.empty((0, estimator.n_classes_))

    def trained_tensors(self, module: Any) -> dict[str, torch.Tensor]:
        """The head's tensors."""
        prefix = head_name(module.model) + "."
        return {k: v for k, v in module.model.state_dict().items() if k.startswith(prefix)}
