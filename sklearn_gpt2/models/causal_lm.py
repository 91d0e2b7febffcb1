"""The language-model scoring module: each class's label log-probability after its prompt.

A prompt is run once. Its last position gives the log-probability of every label's first
token; labels of several tokens continue from the prompt's key/value cache, all classes in one
batched pass, so the prompt is never re-run per class. Batches are left-padded and positions
are counted over real tokens (see :mod:`sklearn_gpt2.models.common`), so a text's scores do
not depend on its batch. In training the module returns the language model's logits, for a
loss on the label tokens only.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers.modeling_utils import PreTrainedModel

from ..text.rows import IGNORE_INDEX
from .common import real_token_positions, use_fused_activations


def _cache_argument(model: nn.Module) -> str:
    # transformers renamed the key/value-cache argument from past_key_values to cache.
    parameters = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


class LabelScoringModule(nn.Module):
    """A causal language model that scores label token sequences after prompts.

    Parameters
    ----------
    model : PreTrainedModel
        A model loaded with ``AutoModelForCausalLM``.
    label_token_ids : list of list of int
        The tokens of each class's label, as they follow the prompt.
    pad_token_id : int
        Id for padding label continuations (masked out).
    """

    pads_left = True

    def __init__(
        self, model: PreTrainedModel, label_token_ids: list[list[int]], pad_token_id: int
    ) -> None:
        super().__init__()
        self.model = use_fused_activations(model)
        self.label_token_ids = [list(ids) for ids in label_token_ids]
        first = torch.tensor([ids[0] for ids in self.label_token_ids])
        longest = max(len(ids) for ids in self.label_token_ids)
        # Continuations: label tokens but the last are fed; label tokens but the first are
        # predicted. Right-padded: a causal model's earlier positions never see the padding.
        inputs = torch.full((len(first), max(longest - 1, 0)), pad_token_id)
        targets = torch.full_like(inputs, IGNORE_INDEX)
        for row, ids in enumerate(self.label_token_ids):
            inputs[row, : len(ids) - 1] = torch.tensor(ids[:-1], dtype=torch.long)
            targets[row, : len(ids) - 1] = torch.tensor(ids[1:], dtype=torch.long)
        self.register_buffer("first_tokens", first, persistent=False)
        self.register_buffer("continuation", inputs, persistent=False)
        self.register_buffer("continuation_targets", targets, persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Language-model logits ``(batch, length, vocab)`` of left-padded sequences."""
        return self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=real_token_positions(attention_mask),
            use_cache=False,
        ).logits

    def score_labels(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Total log-probability of each class's label after each prompt: ``(batch, classes)``."""
        continues = self.continuation.shape[1] > 0
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=real_token_positions(attention_mask),
            use_cache=continues,
            # Only the last position's next-token distribution is read.
            logits_to_keep=1,
        )
        scores = torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, self.first_tokens]
        if not continues:
            return self._checked(scores)
        n_texts, n_classes = input_ids.shape[0], len(self.first_tokens)
        cache = getattr(out, "cache", None) or out.past_key_values
        cache.batch_repeat_interleave(n_classes)
        continuation = self.continuation.repeat(n_texts, 1)
        targets = self.continuation_targets.repeat(n_texts, 1)
        real = targets != IGNORE_INDEX
        mask = torch.cat([attention_mask.repeat_interleave(n_classes, 0), real.long()], dim=1)
        start = attention_mask.sum(-1).repeat_interleave(n_classes)
        positions = start[:, None] + torch.arange(continuation.shape[1], device=start.device)
        logits = self.model(
            input_ids=continuation,
            attention_mask=mask,
            position_ids=positions,
            use_cache=False,
            **{_cache_argument(self.model): cache},
        ).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        picked = log_probs.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
        picked = picked.masked_fill(targets == IGNORE_INDEX, 0.0)
        return self._checked(scores + picked.sum(-1).view(n_texts, n_classes))

    def _checked(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores``, refused when not finite: softmax would make NaN probabilities of them."""
        if not torch.isfinite(scores).all():
            name = getattr(self.model.config, "name_or_path", "") or "the language model"
            raise ValueError(
                f"The label scores of the checkpoint {name!r} are not finite (NaN or "
                f"infinity): its weights are not finite or its activations overflow, so every "
                f"probability would be NaN. Check the checkpoint's weights, or use "
                f"precision='float32'."
            )
        return scores
