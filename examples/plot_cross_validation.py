"""
Stratified k-fold cross-validation
==================================

Cross-validate the classifier over five stratified folds with
:func:`sklearn.model_selection.cross_validate`, scoring each fold by log loss and by
accuracy, as one would any scikit-learn classifier. Every fold fits a fresh copy of the
estimator from the same checkpoint; the checkpoint is read from disk once.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_validate

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import load_demo, make_demo_checkpoint

texts, labels = load_demo()
clf = GPT2SequenceClassifier(
    make_demo_checkpoint(),  # for real work: "gpt2"
    max_length=64,
    lr=1e-3,  # a tiny random model learns the demo's cue words with these settings
    batch_size=8,
    max_epochs=20,
    random_state=0,
)

# %%
# Five folds, two scores
# ----------------------
# ``"neg_log_loss"`` uses ``predict_proba``; scikit-learn negates it so that higher is
# better, so we flip its sign back for display.
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
results = cross_validate(
    clf, texts, labels, cv=cv, scoring=["neg_log_loss", "accuracy"], return_train_score=True
)
log_loss = -results["test_neg_log_loss"]
accuracy = results["test_accuracy"]
print("fold  log loss  accuracy  fit time (s)")
fit_time = results["fit_time"]
for fold, (loss, acc, seconds) in enumerate(zip(log_loss, accuracy, fit_time, strict=True)):
    print(f"{fold:4d}  {loss:8.3f}  {acc:8.3f}  {seconds:12.2f}")
print(f"mean  {log_loss.mean():8.3f}  {accuracy.mean():8.3f}")
print(f"std   {log_loss.std():8.3f}  {accuracy.std():8.3f}")

# %%
# Per-fold scores
# ---------------
# The dashed line is the accuracy of always predicting one class (the classes are
# balanced), and the log loss of predicting 0.5 for both (``log 2``).
folds = np.arange(len(accuracy))
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
ax_loss.bar(folds, log_loss, color="tab:orange")
ax_loss.axhline(np.log(2), ls="--", c="k", lw=1, label="chance (log 2)")
ax_loss.set(xlabel="fold", ylabel="log loss (lower is better)", title="Log loss per fold")
ax_acc.bar(folds, accuracy, color="tab:blue")
ax_acc.axhline(0.5, ls="--", c="k", lw=1, label="chance")
ax_acc.set(xlabel="fold", ylabel="accuracy", ylim=(0, 1), title="Accuracy per fold")
for ax in (ax_loss, ax_acc):
    ax.set_xticks(folds)
    ax.legend(loc="lower right")
plt.show()
