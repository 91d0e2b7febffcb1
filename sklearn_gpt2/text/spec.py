"""The tokenization spec: everything that decides a text's token ids, frozen, as a cache key."""

from __future__ import annotations

from dataclasses import dataclass

TRUNCATION_SIDES = ("right", "left")
TEXT_FIELD = "{text}"


@dataclass(frozen=True)
class TokenizationSpec:
    r"""How texts become token ids; two equal specs give the same ids for the same text.

    Parameters
    ----------
    max_length : int
        Most tokens per text (after the template is applied, special tokens included).
    truncation_side : {"right", "left"}, default="right"
        Which end of a too-long text is cut: ``"right"`` keeps its beginning (the package's
        behaviour since 0.1), ``"left"`` keeps its end.
    template : str or None, default=None
        A string containing ``{text}`` once, e.g. ``"Review: {text}\\nSentiment:"``. Only the
        text is truncated; the template's own tokens are always kept.
    """

    max_length: int
    truncation_side: str = "right"
    template: str | None = None

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1; got {self.max_length}.")
        if self.truncation_side not in TRUNCATION_SIDES:
            raise ValueError(
                f"truncation_side must be one of {TRUNCATION_SIDES}; got {self.truncation_side!r}."
            )
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
