"""sklearn_gpt2.text.tokenize: tokenizing by spec, the bounded cache, no torch needed."""

import subprocess
import sys

import numpy as np
import pytest
from transformers import AutoTokenizer

from sklearn_gpt2.text.spec import TokenizationSpec
from sklearn_gpt2.text.tokenize import CachedTokenizer, TokenCache, tokenize


@pytest.fixture(scope="module")
def tokenizer(tiny_gpt2):
    return AutoTokenizer.from_pretrained(tiny_gpt2)


def test_truncation_keeps_the_side_the_spec_names(tokenizer):
    text = "the acting is superb and the story moves along nicely"
    full = tokenize(tokenizer, [text], TokenizationSpec(256))[0]
    assert len(full) > 6
    head = tokenize(tokenizer, [text], TokenizationSpec(6))[0]
    tail = tokenize(tokenizer, [text], TokenizationSpec(6, truncation_side="left"))[0]
    np.testing.assert_array_equal(head, full[:6])
    np.testing.assert_array_equal(tail, full[-6:])
    assert tokenizer.truncation_side == "right", "the tokenizer's own setting is restored"


def test_template_is_encoded_whole_and_only_the_text_is_cut(tokenizer):
    spec = TokenizationSpec(64, template="review: {text} sentiment:")
    ids = tokenize(tokenizer, ["a lovely film"], spec)[0]
    whole = tokenizer("review: a lovely film sentiment:")["input_ids"]
    np.testing.assert_array_equal(ids, whole)
    short = TokenizationSpec(24, template="review: {text} sentiment:")
    long_text = "the acting is superb and the story moves along nicely " * 3
    cut = tokenize(tokenizer, [long_text], short)[0]
    suffix = tokenizer(" sentiment:")["input_ids"]
    assert len(cut) == 24
    np.testing.assert_array_equal(cut[-len(suffix) :], suffix)


def test_template_longer_than_max_length_is_a_clear_error(tokenizer):
    spec = TokenizationSpec(3, template="a long long template {text} with a long tail")
    with pytest.raises(ValueError, match="leaving no room for the text"):
        tokenize(tokenizer, ["the text " * 5], spec)


def test_empty_text_becomes_one_eos_token(tokenizer):
    ids = tokenize(tokenizer, [""], TokenizationSpec(8))[0]
    assert ids.tolist() == [tokenizer.eos_token_id] and ids.dtype == np.int32


def test_cache_is_bounded_in_tokens_and_evicts_the_oldest():
    cache = TokenCache(max_tokens=5)
    spec = TokenizationSpec(8)
    cache.put((spec, "a"), np.arange(3))
    cache.put((spec, "b"), np.arange(2))
    assert cache.get((spec, "a")) is not None  # "a" is now the most recently used
    cache.put((spec, "c"), np.arange(2))
    assert cache.get((spec, "b")) is None and cache.get((spec, "a")) is not None
    assert cache.n_tokens <= 5 and len(cache) == 2


def test_cached_tokenizer_tokenizes_each_text_once_per_spec(tokenizer):
    cached = CachedTokenizer(tokenizer, TokenCache())
    first = cached(["a b", "a b", "c"], TokenizationSpec(8))
    assert len(cached.cache) == 2  # the duplicate is tokenized once
    again = cached(["c", "a b"], TokenizationSpec(8))
    assert again[0] is first[2] and again[1] is first[0]
    cached(["c"], TokenizationSpec(4))
    assert len(cached.cache) == 3


def test_text_layer_imports_no_torch():
    code = (
        "import sys; import sklearn_gpt2.text.tokenize, sklearn_gpt2.text.batching, "
        "sklearn_gpt2.text.validation; "
        "sys.exit(int('torch' in sys.modules or 'transformers' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
