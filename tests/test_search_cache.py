"""A grid search reads the checkpoint once and tokenizes each text once per max_length.

Issue 3, item 4: a GridSearchCV over 2 learning rates x 2 max lengths x 3 folds (13 fits with
the refit) must not pay for loading the weights or tokenizing the texts in every fit. The spies
below wrap the real functions, so every call still does its real work; they only count.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sklearn.model_selection import GridSearchCV

import sklearn_gpt2
from sklearn_gpt2 import GPT2SequenceClassifier, _data, _model

LEARNING_RATES = [1e-4, 5e-4]
MAX_LENGTHS = [8, 16]
FOLDS = 3


class _FromPretrainedSpy:
    """Stands in for ``AutoModelForSequenceClassification``; counts ``from_pretrained`` calls."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[Any] = []

    def from_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args[0] if args else kwargs.get("pretrained_model_name_or_path"))
        return self.real.from_pretrained(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Anything else the loader may use comes from the real class.
        return getattr(self.real, name)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> tuple[_FromPretrainedSpy, Counter[tuple[int, str]]]:
    sklearn_gpt2.clear_checkpoint_cache()
    loader = _FromPretrainedSpy(_model.AutoModelForSequenceClassification)
    monkeypatch.setattr(_model, "AutoModelForSequenceClassification", loader)

    tokenized: Counter[tuple[int, str]] = Counter()
    real_tokenize = _data.tokenize

    def counting_tokenize(tokenizer: Any, texts: Any, max_length: int) -> Any:
        tokenized.update((max_length, text) for text in texts)
        return real_tokenize(tokenizer, texts, max_length)

    monkeypatch.setattr(_data, "tokenize", counting_tokenize)
    yield loader, tokenized
    # Later tests must not reuse a checkpoint that was loaded through the spy.
    sklearn_gpt2.clear_checkpoint_cache()


def test_grid_search_loads_once_and_tokenizes_once_per_max_length(tiny_gpt2, demo_data, spies):
    loader, tokenized = spies
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
    calls = [str(path) for path in loader.calls]
    assert calls == [str(tiny_gpt2)], f"from_pretrained calls over {n_fits} fits: {calls}"

    # Every distinct text was tokenized exactly once per distinct max_length, although each
    # text is used in 2 training folds, 1 scoring fold and the refit for each candidate.
    distinct = set(X)
    for max_length in MAX_LENGTHS:
        seen = {text: n for (length, text), n in tokenized.items() if length == max_length}
        assert set(seen) == distinct, f"max_length={max_length}: not every text was tokenized"
        repeated = {text: n for text, n in seen.items() if n != 1}
        assert not repeated, f"max_length={max_length}: tokenized more than once: {repeated}"
    assert {length for length, _ in tokenized} == set(MAX_LENGTHS)


def test_clear_checkpoint_cache_forces_a_reload(tiny_gpt2, demo_data, spies):
    """The counter above is meaningful: without the cache each fit reads the checkpoint again."""
    loader, tokenized = spies
    X, y = demo_data
    clf = GPT2SequenceClassifier(
        tiny_gpt2, max_epochs=1, batch_size=16, max_length=8, precision="float32", random_state=0
    )
    clf.fit(X, y)
    sklearn_gpt2.clear_checkpoint_cache()
    clf.fit(X, y)
    assert len(loader.calls) == 2
    assert all(n == 2 for n in tokenized.values()), "clearing the cache forgets the tokens too"
