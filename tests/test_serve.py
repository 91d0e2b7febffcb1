"""The web service: started as a process on 127.0.0.1, real HTTP requests, then stopped.

Requests go only to 127.0.0.1, are few, and each has a timeout; the server is stopped (and
killed if it does not stop) whatever the outcome.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxscript", reason="exporting needs onnxscript: pip install '.[onnx]'")
pytest.importorskip("fastapi", reason="needs the serve extra: pip install '.[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install '.[serve]'")
httpx = pytest.importorskip("httpx", reason="the test client needs httpx")

from sklearn_gpt2.onnx import OnnxTextClassifier  # noqa: E402

HOST = "127.0.0.1"
START_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 30
MAX_TEXTS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def export_dir(tiny_gpt2, demo_data, make_classifier, tmp_path_factory):
    clf = make_classifier(tiny_gpt2, tuning="head", lr=1e-2).fit(*demo_data)
    return clf.export_onnx(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def server(export_dir):
    port = free_port()
    command = [sys.executable, "-m", "sklearn_gpt2.serve", str(export_dir)]
    command += ["--host", HOST, "--port", str(port), "--max-texts", str(MAX_TEXTS)]
    command += ["--max-body-bytes", "4096"]
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {process.stdout.read()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S) as client:
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_health(server, export_dir):
    answer = server.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["classes"] == OnnxTextClassifier(export_dir).classes_.tolist()


def test_predict_answers_labels_and_probabilities(server, export_dir, demo_data):
    texts = [*demo_data[0][:5], "", "🎬 <|endoftext|>"]
    answer = server.post("/predict", json={"texts": texts})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    local = OnnxTextClassifier(export_dir)
    assert body["labels"] == local.predict(texts).tolist()
    expected = local.predict_proba(texts)
    got = np.array([[row[str(c)] for c in local.classes_] for row in body["probabilities"]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'["a list"]', 422, 'must be a JSON object {"texts"'),
        (b'{"text": ["misnamed"]}', 422, 'must be a JSON object {"texts"'),
        (b'{"texts": []}', 422, "texts is empty"),
        (b'{"texts": ["fine", 3]}', 422, "texts[1] is int, not a string"),
        (b'{"texts": ["fine", null]}', 422, "texts[1] is null, not a string"),
        (json.dumps({"texts": ["a"] * (MAX_TEXTS + 1)}).encode(), 413, "at most 8 are accepted"),
        (json.dumps({"texts": ["long " * 2000]}).encode(), 413, "at most 4096"),
    ],
    ids=["malformed", "not-object", "no-texts", "empty", "int-item", "null-item", "many", "big"],
)
def test_bad_requests_get_a_clear_4xx(server, body, status, message):
    answer = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]


def test_server_still_answers_after_bad_requests(server):
    assert server.post("/predict", json={"texts": ["still here"]}).status_code == 200
