"""``tuning="head"``: a frozen backbone whose pooled features are computed once and cached.

Each text's pooled feature (GPT-2: the hidden state of its last real token, with positions
counted over real tokens; an encoder: what its own head reads, e.g. BERT's pooled output) is
computed once per (checkpoint, tokenization spec, precision, device kind, text) and kept in
the checkpoint's bounded feature cache, so every fit on the checkpoint (the folds of a
cross-validation, the candidates of a grid search, ``partial_fit``) reuses it. Only the
classification head trains, for ``max_epochs`` over the cached features: epochs after the
first cost almost nothing. A loaded classifier, which may lack its checkpoint, caches into a
cache of its own.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import torch

from ..base.dataset import PaddedBatchCollator, TextDataset
from ..models.checkpoint import MAX_CACHED_FEATURE_VALUES
from ..models.sequence import head_name
from ..text.batching import SortedBatchSampler
from ..text.tokenize import TokenCache
from .modes import TuningMode, set_trainable


def compute_features(
    module: Any,
    token_ids: list[np.ndarray],
    device: torch.device,
    autocast: Any,
    batch_size: int,
    pad_token_id: int,
) -> list[np.ndarray]:
    """Pooled features (float32, one array per text) of ``token_ids`` under ``module``'s backbone.

    Texts are batched by length, padded as the module expects, and run in evaluation mode
    (no dropout), without autograd, in the precision ``autocast`` sets.
    """
    dataset = TextDataset(token_ids)
    collate = PaddedBatchCollator(pad_token_id, module.pads_left)
    features: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(token_ids)
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(), autocast():
            for rows in SortedBatchSampler(dataset.lengths, batch_size):
                inputs, _ = collate([dataset[i] for i in rows])
                batch = module.features(
                    inputs["input_ids"].to(device), inputs["attention_mask"].to(device)
                )
                batch = batch.float().cpu().numpy()
                for row, index in enumerate(rows):
                    features[index] = batch[row].copy()
    finally:
        module.train(was_training)
    return features


def _check_finite_features(estimator: Any, texts: list[str], features: list[np.ndarray]) -> None:
    """Refuse features with NaN or infinity: the checkpoint, not the learning rate, is at fault."""
    bad = [
        text
        for text, feature in zip(texts, features, strict=True)
        if not np.isfinite(feature).all()
    ]
    if bad:
        checkpoint = vars(estimator).get("_base_checkpoint_", estimator.model_name_or_path)
        raise ValueError(
            f"The features the checkpoint {str(checkpoint)!r} computes are not finite (NaN or "
            f"infinity) for {len(bad)} of {len(texts)} texts (e.g. {bad[0][:50]!r}) at "
            f"precision={estimator.runtime_.precision!r}: its weights are not finite or its "
            f"activations overflow, and no head can classify from them. Check the checkpoint's "
            f"weights, or use precision='float32'."
        )


class FeatureCollator:
    """Stack rows of cached features into a batch ``({"features", "text_index"}, targets)``."""

    def __call__(self, rows: list[Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return the batch of ``rows`` (feature vector, class index, text index)."""
        features = torch.from_numpy(np.stack([feature for feature, _, _ in rows]))
        targets = torch.tensor([int(target) for _, target, _ in rows], dtype=torch.long)
        text_index = torch.tensor([index for _, _, index in rows], dtype=torch.long)
        return {"features": features, "text_index": text_index}, targets


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

    def dataset(self, estimator: Any, texts: Any, y: Any) -> TextDataset:
        """Rows of cached features (computed for the texts not seen before)."""
        spec = estimator.tokenization_spec()
        runtime = estimator.runtime_
        # Features depend on the tokens and on the precision and kind of device computing them.
        key: Hashable = (spec, runtime.precision, runtime.device.type)
        cache = self._cache(estimator)
        texts = list(texts)
        features: list[np.ndarray | None] = [cache.get((key, text)) for text in texts]
        missing = list(dict.fromkeys(t for t, f in zip(texts, features, strict=True) if f is None))
        if missing:
            fresh = compute_features(
                estimator.module_,
                estimator.tokenize_(missing, spec),
                runtime.device,
                runtime.autocast,
                estimator.batch_size,
                estimator.tokenize_.tokenizer.pad_token_id,
            )
            _check_finite_features(estimator, missing, fresh)
            computed = dict(zip(missing, fresh, strict=True))
            for text, feature in computed.items():
                cache.put((key, text), feature)
            features = [
                computed[t] if f is None else f for t, f in zip(texts, features, strict=True)
            ]
        return estimator.make_dataset(features, y)

    def collator(self, estimator: Any) -> FeatureCollator:
        """Stack feature vectors (no padding: they all have the same width)."""
        return FeatureCollator()

    def trained_tensors(self, module: Any) -> dict[str, torch.Tensor]:
        """The head's tensors."""
        prefix = head_name(module.model) + "."
        return {k: v for k, v in module.model.state_dict().items() if k.startswith(prefix)}
