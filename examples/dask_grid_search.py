"""
Grid search on a Dask cluster
=============================

Run the candidates of a :class:`~sklearn.model_selection.GridSearchCV` on the worker
processes of a Dask cluster through joblib's ``"dask"`` backend. This script starts a
local cluster of two worker processes; point :class:`distributed.Client` at a scheduler's
address to use a real cluster. See :doc:`/scaling_out` for GPUs, Ray, and what is sent to
the workers.

It needs the ``dask`` extra (``pip install -e ".[dask]"``) and is not run when the site is
built; run it with ``python examples/dask_grid_search.py``.
"""

# %%
import time

import joblib
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_gpt2 import GPT2SequenceClassifier
from sklearn_gpt2.datasets import load_demo, make_demo_checkpoint


def main() -> None:
    """Search lr x max_length on two local worker processes."""
    texts, labels = load_demo()
    # Every worker reads the checkpoint from this path (once per process): on a cluster of
    # several machines it must be on a shared file system, or be a hub name.
    checkpoint = make_demo_checkpoint()
    search = GridSearchCV(
        GPT2SequenceClassifier(checkpoint, batch_size=16, max_epochs=5, random_state=0),
        {"lr": [1e-4, 1e-3, 3e-3], "max_length": [8, 64]},
        cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
        n_jobs=-1,  # as many fits at once as the cluster has worker threads
    )
    # One thread per worker: each fit gets a process of its own.
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        print(client)
        start = time.perf_counter()
        with joblib.parallel_backend("dask"):
            search.fit(texts, labels)
        print(f"18 fits on the cluster, refit here: {time.perf_counter() - start:.1f} s")
    print("best parameters:", search.best_params_)
    print(f"best mean accuracy: {search.best_score_:.3f}")


# Worker processes import this file: start the cluster only when it is run as a script.
if __name__ == "__main__":
    main()
