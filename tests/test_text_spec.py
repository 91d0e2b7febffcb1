"""sklearn_gpt2.text.spec: the frozen tokenization spec."""

import dataclasses

import pytest

from sklearn_gpt2.text.spec import TokenizationSpec


def test_equal_specs_are_one_cache_key():
    assert TokenizationSpec(16) == TokenizationSpec(16, "right", None)
    assert len({TokenizationSpec(16), TokenizationSpec(16), TokenizationSpec(32)}) == 2
    assert TokenizationSpec(16, template="a {text}") != TokenizationSpec(16)


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TokenizationSpec(16).max_length = 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_length": 0}, "at least 1"),
        ({"max_length": 8, "truncation_side": "middle"}, "truncation_side"),
        ({"max_length": 8, "template": "no field"}, "exactly once"),
        ({"max_length": 8, "template": "{text} and {text}"}, "exactly once"),
    ],
)
def test_bad_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenizationSpec(**kwargs)


def test_template_parts():
    assert TokenizationSpec(8, template="Review: {text}\nSentiment:").template_parts == (
        "Review: ",
        "\nSentiment:",
    )
    assert TokenizationSpec(8).template_parts == ("", "")
