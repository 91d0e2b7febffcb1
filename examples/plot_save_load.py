"""
Saving and loading a fitted classifier
======================================

Save a fitted classifier two ways and check that each loaded copy predicts exactly the
probabilities of the original:

* :func:`joblib.dump` / :func:`joblib.load`, like any scikit-learn estimator (a pickle:
  load only files you trust);
* :meth:`~sklearn_gpt2.GPT2SequenceClassifier.save_pretrained` /
  :meth:`~sklearn_gpt2.GPT2SequenceClassifier.from_pretrained`, a directory of
  safetensors weights, tokenizer files and JSON that loads without unpickling anything.
"""

# %%
import tempfile
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import load_demo, make_demo_checkpoint

texts, labels = load_demo()
clf = GPT2SequenceClassifier(
    make_demo_checkpoint(), lr=1e-3, batch_size=16, max_epochs=6, random_state=0
).fit(texts, labels)
proba = clf.predict_proba(texts)

workdir = Path(tempfile.mkdtemp())

# %%
# joblib
# ------
joblib_file = workdir / "classifier.joblib"
joblib.dump(clf, joblib_file)
from_joblib = joblib.load(joblib_file)
proba_joblib = from_joblib.predict_proba(texts)
print(f"{joblib_file.name}: {joblib_file.stat().st_size / 1e6:.2f} MB")
print("identical probabilities:", np.array_equal(proba, proba_joblib))

# %%
# The pickle-free directory
# -------------------------
directory = clf.save_pretrained(workdir / "classifier")
for path in sorted(directory.iterdir()):
    print(f"{path.name:28s} {path.stat().st_size:>10,d} bytes")
from_directory = GPT2SequenceClassifier.from_pretrained(directory)
proba_directory = from_directory.predict_proba(texts)
print("identical probabilities:", np.array_equal(proba, proba_directory))
print("classes:", list(from_directory.classes_), "lr:", from_directory.lr)

# %%
# Original against loaded
# -----------------------
# Every point lies on the diagonal: the loaded copies give bit-identical probabilities.
positive = list(clf.classes_).index("positive")
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
ax.plot([0, 1], [0, 1], c="0.7", lw=1)
ax.scatter(proba[:, positive], proba_joblib[:, positive], marker="o", s=40,
           facecolors="none", edgecolors="tab:blue", label="joblib.load")  # fmt: skip
ax.scatter(proba[:, positive], proba_directory[:, positive], marker="x", s=20,
           c="tab:orange", label="from_pretrained")  # fmt: skip
ax.set(
    xlabel="P(positive), original",
    ylabel="P(positive), loaded",
    title="Probabilities after saving and loading",
)
ax.legend()
plt.show()
