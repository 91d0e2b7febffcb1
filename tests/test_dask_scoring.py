"""Scoring texts on a Dask cluster: the same probabilities as one process, the model sent once.

A real ``distributed.LocalCluster`` of two worker processes (one thread each) predicts a
``dask.dataframe`` Series and a ``dask.bag`` of texts with a torch estimator and with the
ONNX classifier. Each worker holds one copy of the model, whatever the number of partitions.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="needs dask: pip install '.[dask]'")
pytest.importorskip("dask")
pd = pytest.importorskip("pandas")

import dask  # noqa: E402
import dask.bag  # noqa: E402
import dask.dataframe  # noqa: E402

from sklearn_gpt2 import dask as gpt2_dask  # noqa: E402

N_PARTITIONS = 5


def one_thread() -> distributed.WorkerPlugin:
    class OneThread(distributed.WorkerPlugin):
        name = "sklearn-gpt2-one-thread"

        def setup(self, worker):
            import torch

            torch.set_num_threads(1)

    return OneThread()


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    )
    client = distributed.Client(cluster)
    client.register_plugin(one_thread())
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def fitted(tiny_gpt2, demo_data, make_classifier):
    return make_classifier(tiny_gpt2).fit(*demo_data)


@pytest.fixture(scope="module")
def onnx_classifier(fitted, tmp_path_factory):
    pytest.importorskip("onnxscript", reason="exporting needs onnxscript")
    from sklearn_gpt2.onnx import OnnxTextClassifier

    return OnnxTextClassifier(fitted.export_onnx(tmp_path_factory.mktemp("dask") / "model"))


def texts_of(demo_data) -> list[str]:
    return [*demo_data[0], "", "🎬 <|endoftext|>"]


def as_series(texts):
    return dask.dataframe.from_pandas(pd.Series(texts, name="text"), npartitions=N_PARTITIONS)


def as_bag(texts):
    return dask.bag.from_sequence(texts, npartitions=N_PARTITIONS)


def model_transfers_per_worker(client, estimator_type: str) -> dict[str, int]:
    """How often each worker received the scattered model from another worker."""

    def count(dask_worker, prefix=f"{estimator_type}-"):
        return sum(
            any(str(key).startswith(prefix) for key in entry["keys"])
            for entry in dask_worker.transfer_incoming_log
        )

    return client.run(count)


def copies_in_graph(array, estimator) -> int:
    """Nodes of the task graph that hold the estimator itself (Dask wraps data in nodes)."""
    values = dict(array.__dask_graph__()).values()
    return sum(isinstance(getattr(v, "value", v), type(estimator)) for v in values)


def test_without_a_cluster_the_graph_holds_one_copy(fitted, demo_data):
    # Dask's local scheduler (no distributed client): one node of the graph holds the model.
    texts = texts_of(demo_data)
    with dask.config.set(scheduler="synchronous"):
        proba = gpt2_dask.predict_proba(fitted, as_bag(texts))
        assert copies_in_graph(proba, fitted) == 1
        np.testing.assert_allclose(proba.compute(), fitted.predict_proba(texts), atol=1e-6)


@pytest.mark.parametrize("collection", [as_series, as_bag], ids=["series", "bag"])
@pytest.mark.parametrize("kind", ["torch", "onnx"])
def test_same_probabilities_as_one_process(
    client, fitted, onnx_classifier, demo_data, collection, kind
):
    estimator = fitted if kind == "torch" else onnx_classifier
    texts = texts_of(demo_data)
    proba = gpt2_dask.predict_proba(estimator, collection(texts))
    assert proba.numblocks[0] == N_PARTITIONS
    computed = proba.compute()
    # Batches are made per partition, so other texts share a batch: equal up to padding noise.
    np.testing.assert_allclose(computed, estimator.predict_proba(texts), atol=1e-6, rtol=0)
    # The graph refers to one scattered copy, not one copy per partition ...
    assert copies_in_graph(proba, estimator) == 0
    # ... and no worker received it more than once (scattered to it, or fetched once).
    transfers = model_transfers_per_worker(client, type(estimator).__name__)
    assert all(n <= 1 for n in transfers.values()), transfers
    labels = gpt2_dask.predict(estimator, collection(texts)).compute()
    np.testing.assert_array_equal(labels, estimator.predict(texts))
    del proba


def test_rejects_what_is_not_a_collection_of_texts(fitted, demo_data):
    with pytest.raises(TypeError, match=r"dask\.dataframe Series or a dask\.bag"):
        gpt2_dask.predict_proba(fitted, demo_data[0])
    frame = dask.dataframe.from_pandas(pd.DataFrame({"text": demo_data[0]}), npartitions=2)
    with pytest.raises(TypeError, match=r"pass the column of texts, e.g. frame\['text'\]"):
        gpt2_dask.predict_proba(fitted, frame)
