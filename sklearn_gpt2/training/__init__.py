"""Training modes: how much of the model a fit updates (``tuning="full"``, ``"head"``, ``"lora"``).

Each mode is one object that the shared base composes (see :class:`TuningMode`); the estimator
looks it up by its ``tuning`` parameter. A new mode is one class and one line in
``TUNING_MODES``.
"""

from __future__ import annotations

from .head import HeadTuning
from .lora import LoraTuning
from .modes import FullTuning, TuningMode

#: The modes by the value of the ``tuning`` parameter.
TUNING_MODES: dict[str, TuningMode] = {
    "full": FullTuning(),
    "head": HeadTuning(),
    "lora": LoraTuning(),
}


def tuning_mode(name: str) -> TuningMode:
    """The mode called ``name`` (one of ``TUNING_MODES``)."""
    try:
        return TUNING_MODES[name]
    except KeyError:
        raise ValueError(f"tuning must be one of {sorted(TUNING_MODES)}; got {name!r}.") from None


__all__ = ["TUNING_MODES", "FullTuning", "HeadTuning", "LoraTuning", "TuningMode", "tuning_mode"]
