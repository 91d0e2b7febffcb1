"""The public API's docstrings follow numpydoc, and their Examples run."""

import doctest
import importlib

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

PUBLIC = [
    "sklearn_gpt2.GPT2SequenceClassifier",
    "sklearn_gpt2.GPT2SequenceClassifier.fit",
    "sklearn_gpt2.GPT2SequenceClassifier.predict",
    "sklearn_gpt2.GPT2SequenceClassifier.predict_proba",
    "sklearn_gpt2.GPT2SequenceClassifier.score",
    "sklearn_gpt2.GPT2PromptClassifier",
    "sklearn_gpt2.GPT2PromptClassifier.fit",
    "sklearn_gpt2.GPT2PromptClassifier.predict_proba",
    "sklearn_gpt2.clear_checkpoint_cache",
    "sklearn_gpt2.datasets.load_demo",
    "sklearn_gpt2.datasets.build_tiny_gpt2",
    "sklearn_gpt2.datasets.make_demo_checkpoint",
    "sklearn_gpt2._cli.main",
]

# What we hold every public docstring to: a well-formed summary, every parameter documented
# with a type and a description (and nothing documented that does not exist), and returns
# described. Left out on purpose: See Also (SA01), extended summaries (ES01), an Examples
# section on every method (EX01: the class has one) and RT02, which rejects the named
# "self : GPT2SequenceClassifier" returns that scikit-learn's docstrings use.
CHECKS = {
    "GL01", "GL02", "GL03", "GL05", "GL06", "GL07", "GL09", "GL10",
    "SS01", "SS02", "SS03", "SS04", "SS05", "SS06",
    "PR01", "PR02", "PR03", "PR04", "PR05", "PR06", "PR07", "PR08", "PR09", "PR10",
    "RT01", "RT03", "RT04", "RT05", "YD01",
}  # fmt: skip


@pytest.mark.parametrize("name", PUBLIC)
def test_numpydoc(name):
    result = numpydoc_validate.validate(name)
    errors = [f"{code}: {message}" for code, message in result["errors"] if code in CHECKS]
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    ("module", "min_examples"),
    [
        ("sklearn_gpt2._classifier", 1),
        ("sklearn_gpt2._prompt_classifier", 1),
        ("sklearn_gpt2.datasets", 1),
    ],
)
def test_docstring_examples_run(module, min_examples):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(importlib.import_module(module), optionflags=flags, verbose=False)
    assert result.attempted >= min_examples
    assert result.failed == 0


# The documentation pages' examples (doctest sessions and scripts): tests/test_docs_examples.py.
