"""What every module of the package does to a decoder: real-token positions, fused GELU.

Why padding changes GPT-2's predictions, and the fix
-----------------------------------------------------
GPT-2 has learned *absolute* position embeddings, and transformers numbers positions
``0..T-1`` along the padded row without looking at the attention mask. With left padding, a
text of length ``n`` padded to ``T`` therefore sees positions ``T-n..T-1`` instead of
``0..n-1``: its prediction depends on how much padding its batch needed. We pass explicit
``position_ids`` derived from the attention mask, so real tokens always get ``0..n-1``.

transformers' own pooling takes "the last token that is not the pad id". With EOS used as the
pad token this misreads a text that ends in a real EOS token, and an empty text. We pool from
the last position of the left-padded row, which is the last real token by construction, and
never compare token ids with the pad id.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import NewGELUActivation


def real_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids counted over real tokens only (``cumsum(mask) - 1``; 0 on padding)."""
    return (attention_mask.cumsum(-1) - 1).clamp_(min=0)


def use_fused_activations(model: nn.Module) -> nn.Module:
    """Swap GPT-2's elementwise-chain GELU for torch's fused kernel of the same function.

    The tanh-approximated GELU of GPT-2 (``gelu_new``) is written as a chain of elementwise
    ops; ``nn.GELU(approximate="tanh")`` computes the same function (equal within 3e-7).

    On a CPU the chain costs about a fifth of GPT-2's forward pass; the fused kernel a third
    of that, in training and prediction alike.
    """
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, NewGELUActivation):
                setattr(parent, name, nn.GELU(approximate="tanh"))
    return model
