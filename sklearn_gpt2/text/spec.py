"""The tokenization spec: everything that decides a text's token ids, frozen, as a cache key."""

from __future__ import annotations

from dataclasses import dataclass

#: What of a too-long text is kept (see :mod:`sklearn_gpt2.text.truncation`).
TRUNCATIONS = ("head", "tail", "head+tail", "window")
TRUNCATION_SIDES = ("right", "left")
TEXT_FIELD = "{text}"


@dataclass(frozen=True)
class TokenizationSpec:
    r"""How texts become token ids; two equal specs give the same ids for the same text.

    Parameters
    ----------
    max_length : int
        Most tokens per row (after the template is applied, special tokens included).
    truncation_side : {"right", "left"}, default="right"
        The older spelling of ``truncation``: ``"left"`` is ``truncation="tail"``. It always
        reads ``"left"`` when ``truncation="tail"`` and ``"right"`` otherwise.
    template : str or None, default=None
        A string containing ``{text}`` once, e.g. ``"Review: {text}\\nSentiment:"``. Only the
        text is truncated; the template's own tokens (and a BOS token) are kept in every row.
    truncation : {"head", "tail", "head+tail", "window"}, default="head"
        What of a text longer than ``max_length`` is kept: its beginning (the package's
        behaviour since 0.1), its end, both ends, or all of it as overlapping windows (several
        rows per text). A text that fits is never cut, whatever this says.
    window_stride : int or None, default=None
        Tokens between the starts of two windows (``truncation="window"`` only); None is half
        a window.
    """

    max_length: int
    truncation_side: str = "right"
    template: str | None = None
    truncation: str = "head"
    window_stride: int | None = None

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1; got {self.max_length}.")
        if self.truncation_side not in TRUNCATION_SIDES:
            raise ValueError(
                f"truncation_side must be one of {TRUNCATION_SIDES}; got {self.truncation_side!r}."
            )
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TRUNCATIONS}; got {self.truncation!r}.")
        if self.truncation_side == "left" and self.truncation not in ("head", "tail"):
            raise ValueError(
                f"truncation_side='left' keeps a text's end, which contradicts "
                f"truncation={self.truncation!r}; give only truncation."
            )
        if self.window_stride is not None and self.window_stride < 1:
            raise ValueError(f"window_stride must be at least 1; got {self.window_stride}.")
        # One spelling per meaning, so that equal meanings are equal cache keys.
        truncation = "tail" if self.truncation_side == "left" else self.truncation
        object.__setattr__(self, "truncation", truncation)
        object.__setattr__(self, "truncation_side", "left" if truncation == "tail" else "right")
        if truncation != "window":
            object.__setattr__(self, "window_stride", None)
        if self.template is not None and self.template.count(TEXT_FIELD) != 1:
            raise ValueError(
                f"template must contain {TEXT_FIELD!r} exactly once; got {self.template!r}."
            )

    @property
    def template_parts(self) -> tuple[str, str]:
        """The template's text before and after ``{text}`` (``("", "")`` without one)."""
        if self.template is None:
            return "", ""
        prefix, suffix = self.template.split(TEXT_FIELD)
        return prefix, suffix
