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

from ..models.checkpoint import MAX_CACHED_FEATURE_VALUES
from ..models.sequence import head_name
from ..text.rows import Rows
from ..text.runner import run_rows
from ..text.tokenize import TokenCache
from .dataset import FeatureCollator, TextDataset
from .modes import TuningMode, set_trainable


def compute_features(
    module: Any, rows: Rows, device: torch.device, autocast: Any, batch_size: int, pad_id: int
) -> np.ndarray:
    """Pooled features (float32, one row per row) of ``rows`` under ``module``'s backbone.

    Rows go through the one batch runner (batched by length, padded as the module expects),
    in evaluation mode (no dropout), without autograd, in the precision ``autocast`` sets.
    """

    def engine(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        features = module.features(
            torch.from_numpy(input_ids).to(device), torch.from_numpy(attention_mask).to(device)
        )
        return features.float().cpu().numpy()  # type: ignore[no-any-return]

    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(), autocast():
            return run_rows(
                rows, engine, batch_size=batch_size, pad_token_id=pad_id, pad_left=module.pads_left
            )
    finally:
        module.train(was_training)


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

    def features(self, estimator: Any, rows: Rows) -> list[np.ndarray]:
        """The pooled feature of each row, computed only for token sequences not seen before.

        A feature depends on the row's tokens and on the precision and kind of device that
        computed it, so two fits whose rows share tokens (a grid over ``max_length`` on short
        texts, the folds of a cross-validation) share the feature.
        """
        runtime = estimator.runtime_
        key: Hashable = (runtime.precision, runtime.device.type)
        cache = self._cache(estimator)
        token_keys = [ids.tobytes() for ids in rows.token_ids]
        found: list[np.ndarray | None] = [cache.get((key, tokens)) for tokens in token_keys]  # type: ignore[arg-type]
        missing = list(
            dict.fromkeys(t for t, f in zip(token_keys, found, strict=True) if f is None)
        )
        if missing:
            position = {tokens: i for i, tokens in enumerate(token_keys)}
            fresh = compute_features(
                estimator._net.module_,
                Rows.one_per_text([rows.token_ids[position[t]] for t in missing]),
                runtime.device,
                runtime.autocast,
                estimator.batch_size,
                estimator.tokenizer_.pad_token_id,
            )
            _check_finite_features(estimator, fresh)
            computed = dict(zip(missing, fresh, strict=True))
            for tokens, feature in computed.items():
                cache.put((key, tokens), feature)  # type: ignore[arg-type]
            found = [
                computed[t] if f is None else f for t, f in zip(token_keys, found, strict=True)
            ]
        return found  # type: ignore[return-value]

    def dataset(self, estimator: Any, texts: Any, y: Any) -> TextDataset:
        """Training rows of cached features, each with its text's class index."""
        rows = estimator._rows(list(texts))
        targets = None if y is None else np.asarray(y)[rows.text_index]
        return TextDataset(self.features(estimator, rows), targets, rows.text_index)

    def collator(self, estimator: Any, weighted: bool = False) -> FeatureCollator:
        """Stack feature vectors (no padding: they all have the same width)."""
        return FeatureCollator(weighted)

    def row_proba(self, estimator: Any, rows: Rows) -> np.ndarray:
        """Probabilities of each row from its cached feature, the head run batch by batch."""
        features = np.stack(self.features(estimator, rows)) if len(rows) else np.empty((0, 0))
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
