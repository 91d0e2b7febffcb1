"""Grid search on a Dask cluster: same results as in one process, one load per worker, no hang.

Issue 12, item 4. A real ``distributed.LocalCluster`` of two worker processes (one thread
each) runs ``GridSearchCV(...).fit`` inside ``joblib.parallel_backend("dask")``. Checked:

- the search finds the same ``best_params_`` and the same per-split scores as ``n_jobs=1``;
- each worker process reads the checkpoint from disk once, however many fits it runs;
- a worker killed mid-search (SIGKILL, as the OOM killer would) costs a retry on the other
  worker, and the search still ends with the same results; with retries turned off the search
  fails with ``KilledWorker`` naming the lost task. Neither hangs: every search runs under a
  time limit.

How often a worker loads a checkpoint is observed through the package's log: the
``sklearn_gpt2`` logger records ``"Loaded checkpoint ..."`` at INFO level once per read from
disk. A worker plugin counts those records on each worker, and pins torch to one thread so that
workers and the test process compute bit-identical results.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_gpt2 import GPT2SequenceClassifier

distributed = pytest.importorskip("distributed", reason="needs dask: pip install -e '.[dask]'")
dask = pytest.importorskip("dask")

GRID = {"lr": [1e-4, 1e-3], "max_length": [8, 32]}
SCORING = ["neg_log_loss", "accuracy"]
N_FITS = 2 * 2 * 3  # candidates x folds, the refit (in this process) aside
SEARCH_TIMEOUT_S = 120  # a search takes seconds; this long means it hangs


def make_search(checkpoint: Any) -> GridSearchCV:
    estimator = GPT2SequenceClassifier(
        checkpoint, batch_size=8, max_epochs=2, precision="float32", random_state=0
    )
    return GridSearchCV(
        estimator,
        GRID,
        scoring=SCORING,
        refit="neg_log_loss",
        cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
        n_jobs=-1,
        error_score="raise",
    )


def fit_on_dask(search: GridSearchCV, X: Any, y: Any, client: Any) -> GridSearchCV:
    """Fit under the dask joblib backend; raise a lost task's error, and never hang.

    joblib's dask backend (1.6) never completes a job whose Dask future failed (a task that
    killed more workers than ``distributed.scheduler.allowed-failures``): ``Parallel`` would
    wait for it forever. So the fit runs in a thread, and this one watches the client's
    futures and raises the first failure (``KilledWorker``), or fails after the time limit.
    """
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            with joblib.parallel_backend("dask"):
                outcome["search"] = search.fit(X, y)
        except BaseException as error:
            outcome["error"] = error

    # A daemon thread: should the search hang, it must not keep the test session alive.
    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    deadline = time.monotonic() + SEARCH_TIMEOUT_S
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.1)
        failed = [f for f in list(client.futures.values()) if f.status == "error"]
        if failed:
            raise failed[0].exception
    if thread.is_alive():
        pytest.fail(f"the search on the Dask cluster did not finish in {SEARCH_TIMEOUT_S} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["search"]


def worker_setup() -> Any:
    """A worker plugin; built in a function so that cloudpickle ships it by value."""

    class OneThreadCountLoads(distributed.WorkerPlugin):
        name = "sklearn-gpt2-test-setup"

        def setup(self, worker: Any) -> None:
            import logging

            import torch

            torch.set_num_threads(1)
            loads: list[str] = []

            class Count(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    if record.getMessage().startswith("Loaded checkpoint"):
                        loads.append(record.getMessage())

            logger = logging.getLogger("sklearn_gpt2")
            logger.setLevel(logging.INFO)
            logger.addHandler(Count(logging.INFO))
            worker.sklearn_gpt2_loads = loads

    return OneThreadCountLoads()


def loads_per_worker(client: Any) -> dict[str, int]:
    return client.run(lambda dask_worker: len(dask_worker.sklearn_gpt2_loads))


def start_client() -> Any:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    )
    client = distributed.Client(cluster)
    client.register_plugin(worker_setup())
    return client


def stop_client(client: Any) -> None:
    cluster = client.cluster
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def serial_search(tiny_gpt2, demo_data) -> GridSearchCV:
    search = make_search(tiny_gpt2).set_params(n_jobs=1)
    return search.fit(*demo_data)


@pytest.fixture(scope="module")
def client():
    client = start_client()
    yield client
    stop_client(client)


def assert_same_results(search: GridSearchCV, serial: GridSearchCV) -> None:
    assert search.best_params_ == serial.best_params_
    assert search.cv_results_["params"] == serial.cv_results_["params"]
    for name in SCORING:
        for split in range(3):
            key = f"split{split}_test_{name}"
            np.testing.assert_array_equal(search.cv_results_[key], serial.cv_results_[key], key)
        key = f"mean_test_{name}"
        np.testing.assert_array_equal(search.cv_results_[key], serial.cv_results_[key], key)


@pytest.mark.slow
def test_grid_search_on_dask_matches_one_process(client, serial_search, tiny_gpt2, demo_data):
    start = time.perf_counter()
    search = fit_on_dask(make_search(tiny_gpt2), *demo_data, client)
    print(f"search on the cluster: {time.perf_counter() - start:.1f} s")
    assert_same_results(search, serial_search)

    # Both workers took part, and each read the checkpoint from disk exactly once.
    loads = loads_per_worker(client)
    assert len(loads) == 2
    assert sorted(loads.values()) == [1, 1], f"checkpoint loads per worker: {loads}"

    # A second search on the same workers reads nothing again.
    fit_on_dask(make_search(tiny_gpt2), *demo_data, client)
    assert sorted(loads_per_worker(client).values()) == [1, 1]


def kill_when_busy(client: Any, address: str, pid: int, killed: threading.Event) -> None:
    """SIGKILL the worker at ``address`` once it is running a fit."""
    deadline = time.monotonic() + SEARCH_TIMEOUT_S
    while time.monotonic() < deadline:
        if client.processing(workers=[address]).get(address):
            time.sleep(0.2)  # well inside a fit (a fit takes about a second here)
            os.kill(pid, signal.SIGKILL)
            killed.set()
            return
        time.sleep(0.02)


def test_worker_killed_mid_search_is_retried(client, serial_search, tiny_gpt2, demo_data):
    address, pid = sorted(client.run(os.getpid).items())[0]
    killed = threading.Event()
    killer = threading.Thread(target=kill_when_busy, args=(client, address, pid, killed))
    killer.start()
    search = fit_on_dask(make_search(tiny_gpt2), *demo_data, client)
    killer.join()
    assert killed.is_set(), "the worker was never seen busy, so it was not killed"
    assert address not in client.scheduler_info()["workers"], "the killed worker is still there"

    # The lost fits ran again elsewhere; the results are those of one process.
    assert_same_results(search, serial_search)
    # The nanny started a new worker; no worker read the checkpoint twice.
    assert all(count <= 1 for count in loads_per_worker(client).values())


@pytest.mark.slow
def test_worker_killed_without_retries_is_reported(tiny_gpt2, demo_data):
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        client = start_client()
    try:
        address, pid = sorted(client.run(os.getpid).items())[0]
        killed = threading.Event()
        killer = threading.Thread(target=kill_when_busy, args=(client, address, pid, killed))
        killer.start()
        with pytest.raises(distributed.KilledWorker, match="workers died") as lost:
            fit_on_dask(make_search(tiny_gpt2), *demo_data, client)
        killer.join()
        assert killed.is_set()
        print(f"reported: {lost.value}")
    finally:
        stop_client(client)
