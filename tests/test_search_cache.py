"""A grid search reads the checkpoint once and tokenizes each text once per max_length.

A GridSearchCV over 2 learning rates x 2 max lengths x 3 folds (13 fits with the refit) must
not pay for loading the weights or tokenizing the texts in every fit. The spies wrap the real
functions (``patch.object(..., wraps=...)``), so every call still does its real work; they only
count.
"""

from __future__ import annotations

from collections import Counter
from unittest import mock

import pytest
from sklearn.model_selection import GridSearchCV
from transformers import AutoModelForSequenceClassification

import sklearn_gpt2
from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.text import tokenize as tokenize_module

LEARNING_RATES = [1e-4, 5e-4]
MAX_LENGTHS = [8, 16]
FOLDS = 3


@pytest.fixture
def spies():
    sklearn_gpt2.clear_checkpoint_cache()
    with (
        mock.patch.object(
            AutoModelForSequenceClassification,
            "from_pretrained",
            wraps=AutoModelForSequenceClassification.from_pretrained,
        ) as loader,
        mock.patch.object(tokenize_module, "tokenize", wraps=tokenize_module.tokenize) as tokenize,
    ):
        yield loader, tokenize
    # Later tests must not reuse a checkpoint that was loaded through the spy.
    sklearn_gpt2.clear_checkpoint_cache()


def tokenized_texts(tokenize: mock.MagicMock) -> Counter[tuple[int, str]]:
    """(max_length, text) -> how many times the tokenizer ran on it."""
    counts: Counter[tuple[int, str]] = Counter()
    for call in tokenize.call_args_list:
        _, texts, spec = call.args
        counts.update((spec.max_length, text) for text in texts)
    return counts


def test_grid_search_loads_once_and_tokenizes_once_per_max_length(tiny_gpt2, demo_data, spies):
    loader, tokenize = spies
    X, y = demo_data
    search = GridSearchCV(
        GPT2SequenceClassifier(
            tiny_gpt2, max_epochs=1, batch_size=8, precision="float32", random_state=0
        ),
        {"lr": LEARNING_RATES, "max_length": MAX_LENGTHS},
        cv=FOLDS,
        n_jobs=1,
    )
    search.fit(X, y)

    n_fits = len(LEARNING_RATES) * len(MAX_LENGTHS) * FOLDS + 1  # + the refit
    assert len(search.cv_results_["params"]) * FOLDS + 1 == n_fits
    assert search.best_estimator_.predict(X[:3]).shape == (3,)

    # The real loader ran, exactly once, for the one checkpoint every fit uses.
    calls = [str(call.args[0]) for call in loader.call_args_list]
    assert calls == [str(tiny_gpt2)], f"from_pretrained calls over {n_fits} fits: {calls}"

    # Every distinct text was tokenized exactly once per distinct max_length, although each
    # text is used in 2 training folds, 1 scoring fold and the refit for each candidate.
    tokenized = tokenized_texts(tokenize)
    distinct = set(X)
    for max_length in MAX_LENGTHS:
        seen = {text: n for (length, text), n in tokenized.items() if length == max_length}
        assert set(seen) == distinct, f"max_length={max_length}: not every text was tokenized"
        repeated = {text: n for text, n in seen.items() if n != 1}
        assert not repeated, f"max_length={max_length}: tokenized more than once: {repeated}"
    assert {length for length, _ in tokenized} == set(MAX_LENGTHS)


def test_clear_checkpoint_cache_forces_a_reload(tiny_gpt2, demo_data, spies):
    """The counter above is meaningful: without the cache each fit reads the checkpoint again."""
    loader, tokenize = spies
    X, y = demo_data
    clf = GPT2SequenceClassifier(
        tiny_gpt2, max_epochs=1, batch_size=16, max_length=8, precision="float32", random_state=0
    )
    clf.fit(X, y)
    sklearn_gpt2.clear_checkpoint_cache()
    clf.fit(X, y)
    assert loader.call_count == 2
    assert all(n == 2 for n in tokenized_texts(tokenize).values()), (
        "clearing the cache forgets the tokens too"
    )
