"""The sequence-classification module: logits per text, the same in any batch."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_utils import PreTrainedModel

from .common import real_token_positions, use_fused_activations
from .families import HEAD_NAMES
from .pooling import check_pooling, pool, resolved


def head_name(model: nn.Module) -> str:
    """The attribute of ``model`` that holds its classification head."""
    for name in HEAD_NAMES:
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise ValueError(
        f"{type(model).__name__} has no classification head named {' or '.join(HEAD_NAMES)}; "
        f"tuning='head' and tuning='lora' need to know which module is the head."
    )


class SequenceClassifierModule(nn.Module):
    """A transformers sequence classifier whose output does not depend on padding.

    Decoder models (the decoder families of :mod:`sklearn_gpt2.models.families`) are fed
    left-padded batches, get position ids counted over real tokens only, and are classified
    from the last position. Encoder models are fed right-padded batches and keep their own
    pooling. See :mod:`sklearn_gpt2.models.common` for why.

    The module splits into the backbone, which turns a text into one pooled feature vector
    (:meth:`features`), and the head, which turns features into logits (:meth:`classify`);
    ``forward`` accepts either token ids or precomputed features.

    Parameters
    ----------
    model : PreTrainedModel
        A model loaded with ``AutoModelForSequenceClassification``.
    last_token_pooling : bool
        Whether the model is a decoder: left padding, classified from the last real token
        unless ``pooling`` says otherwise.
    pooling : {"auto", "last", "mean", "weighted_mean"}, default="auto"
        What the head reads (see :mod:`sklearn_gpt2.models.pooling`); ``"auto"`` is the
        model's own pooling.
    """

    def __init__(
        self, model: PreTrainedModel, last_token_pooling: bool, pooling: str = "auto"
    ) -> None:
        super().__init__()
        check_pooling(pooling, last_token_pooling, str(model.config.model_type))
        self.model = use_fused_activations(model)
        self.last_token_pooling = last_token_pooling
        self.pooling = pooling

    @property
    def pads_left(self) -> bool:
        """Whether batches for this module are padded on the left (decoders)."""
        return self.last_token_pooling

    @property
    def head(self) -> nn.Module:
        """The classification head (the part that reads pooled features)."""
        return getattr(self.model, head_name(self.model))  # type: ignore[no-any-return]

    def features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pooling: str | None = None
    ) -> torch.Tensor:
        """Pooled features of shape ``(batch, hidden)``: what the head reads.

        ``pooling="states"`` (decoders) returns the hidden states of every position instead,
        ``(batch, positions, hidden)``, from which :func:`~.pooling.pool_states` pools.
        """
        pooling = resolved(self.pooling if pooling is None else pooling, self.last_token_pooling)
        if self.last_token_pooling:
            hidden = self.model.base_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=real_token_positions(attention_mask),
                use_cache=False,
            ).last_hidden_state
            if pooling == "states":
                return hidden
            # Left padding puts every row's last real token at the last position.
            return hidden[:, -1] if pooling == "last" else pool(hidden, attention_mask, pooling)
        if pooling != "auto":
            hidden = self.model.base_model(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            return pool(hidden, attention_mask, pooling)
        # An encoder pools in its own way (BERT: the pooler over [CLS]); take what its head
        # receives, by running the model once with a hook on the head's input.
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
        try:
            self.model(input_ids=input_ids, attention_mask=attention_mask)
        finally:
            hook.remove()
        if captured[0].ndim != 2:
            raise ValueError(
                f"The head of {type(self.model).__name__} reads a tensor of shape "
                f"{tuple(captured[0].shape)}, not one vector per text; tuning='head' needs a "
                f"model whose head reads pooled features (GPT-2, BERT, MiniLM, ...)."
            )
        return captured[0]

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features."""
        return self.head(features)  # type: ignore[no-any-return,operator]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return logits of shape ``(batch, num_labels)``, from token ids or from features."""
        if features is not None:
            return self.classify(features)
        if not self.last_token_pooling and self.pooling == "auto":
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return self.classify(self.features(input_ids, attention_mask))  # type: ignore[arg-type]
