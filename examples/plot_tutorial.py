"""
GPT-2 text classification, the scikit-learn way
===============================================

A fine-tuning tutorial for GPT-2 text classification, rewritten with
:class:`~sklearn_gpt2.GPT2SequenceClassifier`: fit with a validation split and a
per-epoch log, plot the learning curves from ``history_``, and evaluate on held-out
texts with a classification report and a confusion matrix.
"""

# %%
# Data and checkpoint
# -------------------
# The demo dataset holds short movie-review sentences labelled ``"positive"`` or
# ``"negative"``. The demo checkpoint is a tiny GPT-2 with random weights, built locally;
# replace it with ``"gpt2"`` for real work.
import matplotlib.pyplot as plt
from sklearn.metrics import ConfusionMatrixDisplay, classification_report
from sklearn.model_selection import train_test_split

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import load_demo, make_demo_checkpoint

texts, labels = load_demo()
X_train, X_test, y_train, y_test = train_test_split(
    texts, labels, test_size=0.25, stratify=labels, random_state=0
)
print(f"{len(X_train)} training texts, {len(X_test)} test texts")
print(X_train[:3], y_train[:3])

# %%
# Fit with a validation split
# ---------------------------
# ``validation_fraction=0.2`` holds out a stratified fifth of the training texts; their loss
# and accuracy are recorded every epoch. ``verbose=1`` prints one line per epoch. (A tiny
# random model needs a far larger learning rate than GPT-2's usual ``2e-5``.)
clf = GPT2SequenceClassifier(
    make_demo_checkpoint(),
    max_length=64,
    lr=1e-3,
    batch_size=16,
    max_epochs=12,
    validation_fraction=0.2,
    random_state=0,
    verbose=1,
)
clf.fit(X_train, y_train)

# %%
# Learning curves
# ---------------
# ``history_`` is a skorch ``History``: index it by epoch and by key.
epochs = clf.history_[:, "epoch"]
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
ax_loss.plot(epochs, clf.history_[:, "train_loss"], "o-", label="train")
ax_loss.plot(epochs, clf.history_[:, "valid_loss"], "s-", label="valid")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
ax_acc.plot(epochs, clf.history_[:, "train_acc"], "o-", label="train")
ax_acc.plot(epochs, clf.history_[:, "valid_acc"], "s-", label="valid")
ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(-0.05, 1.05), title="Accuracy")
for ax in (ax_loss, ax_acc):
    ax.legend()
    ax.grid(alpha=0.3)

# %%
# Evaluate on the test texts
# --------------------------
# ``predict`` returns labels from ``classes_``; ``predict_proba`` has one column per class.
y_pred = clf.predict(X_test)
print(classification_report(y_test, y_pred, zero_division=0))

# %%
ConfusionMatrixDisplay.from_predictions(y_test, y_pred, labels=clf.classes_, cmap="Blues")
plt.title("Test texts")
plt.show()
