"""
Grid search over the learning rate and the text length
======================================================

Tune ``lr`` and ``max_length`` with :class:`~sklearn.model_selection.GridSearchCV` and
plot the mean cross-validated accuracy of each combination. The checkpoint is read once,
and each text is tokenized once per ``max_length``, however many fits the search runs.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import load_demo, make_demo_checkpoint

texts, labels = load_demo()
clf = GPT2SequenceClassifier(
    make_demo_checkpoint(),  # for real work: "gpt2", with lr around 1e-5 to 5e-5
    batch_size=16,
    max_epochs=5,
    random_state=0,
)
param_grid = {"lr": [1e-4, 1e-3, 3e-3], "max_length": [8, 64]}

# %%
# The search
# ----------
# 3 learning rates x 2 lengths x 3 folds = 18 fits, and one refit of the best combination
# on all texts.
search = GridSearchCV(
    clf,
    param_grid,
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
    scoring="accuracy",
)
search.fit(texts, labels)
print("best parameters:", search.best_params_)
print(f"best mean accuracy: {search.best_score_:.3f}")

# %%
# Every combination
# -----------------
# ``cv_results_`` holds one row per combination; reshape its mean test score into a
# (learning rate, max length) grid.
mean = np.asarray(search.cv_results_["mean_test_score"])
std = np.asarray(search.cv_results_["std_test_score"])
lrs = np.asarray(search.cv_results_["param_lr"], dtype=float)
lengths = np.asarray(search.cv_results_["param_max_length"], dtype=int)

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for max_length in param_grid["max_length"]:
    rows = lengths == max_length
    ax.errorbar(
        lrs[rows], mean[rows], yerr=std[rows], marker="o", capsize=3,
        label=f"max_length={max_length}",
    )  # fmt: skip
ax.axhline(0.5, ls="--", c="k", lw=1, label="chance")
ax.set(
    xscale="log",
    xlabel="learning rate (lr)",
    ylabel="mean cross-validated accuracy",
    ylim=(0, 1),
    title="GridSearchCV over lr and max_length",
)
ax.legend(loc="lower right")
plt.show()
