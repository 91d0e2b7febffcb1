"""The sequence-classification module: logits per text, the same in any batch."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_utils import PreTrainedModel

from .common import real_token_positions, use_fused_activations


class SequenceClassifierModule(nn.Module):
    """A transformers sequence classifier whose output does not depend on padding.

    Decoder models (GPT-2 and the other families in ``DECODER_MODEL_TYPES``) are fed
    left-padded batches, get position ids counted over real tokens only, and are classified
    from the last position. Encoder models are fed right-padded batches and keep their own
    pooling. See :mod:`sklearn_gpt2.models.common` for why.

    Parameters
    ----------
    model : PreTrainedModel
        A model loaded with ``AutoModelForSequenceClassification``.
    last_token_pooling : bool
        Whether to classify from the last real token (decoders).
    """

    def __init__(self, model: PreTrainedModel, last_token_pooling: bool) -> None:
        super().__init__()
        self.model = use_fused_activations(model)
        self.last_token_pooling = last_token_pooling

    @property
    def pads_left(self) -> bool:
        """Whether batches for this module are padded on the left (decoders)."""
        return self.last_token_pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(batch, num_labels)``."""
        if not self.last_token_pooling:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        hidden = self.model.base_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=real_token_positions(attention_mask),
            use_cache=False,
        ).last_hidden_state
        # Left padding puts every row's last real token at the last position.
        return self.model.score(hidden[:, -1])
