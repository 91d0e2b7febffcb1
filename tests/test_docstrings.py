"""The public API's docstrings follow numpydoc, and their Examples run."""

import doctest
import importlib

import pytest

from sklearn_gpt2 import GPT2PromptClassifier, GPT2SequenceClassifier

numpydoc_validate = pytest.importorskip("numpydoc.validate")

#: Public functions and modules documented outside the estimators.
FUNCTIONS = [
    "sklearn_gpt2.clear_checkpoint_cache",
    "sklearn_gpt2.datasets.load_demo",
    "sklearn_gpt2.datasets.build_tiny_gpt2",
    "sklearn_gpt2.datasets.make_demo_checkpoint",
    "sklearn_gpt2._cli.main",
]
#: Checked on every estimator that has them, wherever they are defined.
ALWAYS = ("partial_fit", "save_pretrained", "from_pretrained", "predict_log_proba")


def _estimator_members(cls: type) -> list[str]:
    """Every public method and property of ``cls`` that this package defines.

    Names are discovered from the class (and the classes it inherits from in this package), so
    a new public method is checked without being listed here; members inherited unchanged from
    scikit-learn or skorch carry their own documentation and are left to them.
    """
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next(klass for klass in cls.__mro__ if name in vars(klass))
        member = vars(owner)[name]
        if isinstance(member, type):  # class-valued defaults (skorch's module=..., etc.)
            continue
        routine = isinstance(member, (property, classmethod, staticmethod)) or callable(member)
        ours = owner.__module__.split(".")[0] == "sklearn_gpt2"
        if (routine and ours) or (name in ALWAYS and hasattr(cls, name)):
            names.append(name)
    return names


PUBLIC = [
    name
    for cls in (GPT2SequenceClassifier, GPT2PromptClassifier)
    for name in [f"sklearn_gpt2.{cls.__name__}"]
    + [f"sklearn_gpt2.{cls.__name__}.{member}" for member in _estimator_members(cls)]
] + FUNCTIONS

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


def test_discovery_covers_the_documented_methods():
    for cls in (GPT2SequenceClassifier, GPT2PromptClassifier):
        members = set(_estimator_members(cls))
        expected = {"fit", "predict", "predict_proba", "score", *ALWAYS}
        assert expected & set(dir(cls)) <= members, cls.__name__


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
