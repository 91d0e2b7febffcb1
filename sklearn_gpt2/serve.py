"""A minimal web service that answers JSON predictions from an ONNX export (no torch).

Run ``python -m sklearn_gpt2.serve MODEL_DIR --host 127.0.0.1 --port 8000`` with the
``serve`` extra installed (FastAPI and uvicorn). ``GET /health`` says whether the model is
loaded and names its classes; ``POST /predict`` takes ``{"texts": ["...", ...]}`` and
answers ``{"labels": [...], "probabilities": [{class: p, ...}, ...]}`` in the order of the
texts. A body that is not JSON, not of that shape, holds a non-string item, or is too large
gets a 4xx answer whose ``detail`` says what was wrong.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, and
# the request type is imported inside create_app (FastAPI is an optional dependency).
import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .onnx import OnnxTextClassifier

logger = logging.getLogger(__name__)

#: Defaults of the request limits (a text costs at most ``max_length`` tokens anyway).
MAX_TEXTS = 256
MAX_BODY_BYTES = 1 << 20


def _import_web() -> tuple[Any, Any]:
    try:
        import fastapi
        import uvicorn
    except ImportError:
        raise ImportError(
            "The web service needs FastAPI and uvicorn: pip install 'sklearn-gpt2[serve]'."
        ) from None
    return fastapi, uvicorn


def _texts_of(payload: Any, max_texts: int) -> tuple[int, str] | list[str]:
    """The texts of a request body, or ``(status, message)`` saying why it is refused."""
    if not isinstance(payload, dict) or not isinstance(payload.get("texts"), list):
        return 422, 'The body must be a JSON object {"texts": ["a text", ...]}.'
    texts = payload["texts"]
    if not texts:
        return 422, "texts is empty; send at least one text."
    if len(texts) > max_texts:
        return 413, f"{len(texts)} texts in one request; at most {max_texts} are accepted."
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            kind = "null" if text is None else type(text).__name__
            return 422, f"texts[{index}] is {kind}, not a string; every text must be a string."
    return texts


def create_app(
    model_dir: str | Path,
    *,
    max_texts: int = MAX_TEXTS,
    max_body_bytes: int = MAX_BODY_BYTES,
    batch_size: int = 32,
) -> Any:
    """The FastAPI application serving the export in ``model_dir``.

    Parameters
    ----------
    model_dir : str or path-like
        A directory written by ``GPT2SequenceClassifier.export_onnx``.
    max_texts : int, default=256
        Most texts per request; more get 413.
    max_body_bytes : int, default=1048576
        Largest request body; a larger one gets 413.
    batch_size : int, default=32
        Texts per batch of the model.

    Returns
    -------
    app : fastapi.FastAPI
    """
    fastapi, _ = _import_web()
    from fastapi import Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    classifier = OnnxTextClassifier(model_dir, batch_size=batch_size)
    classes = classifier.classes_.tolist()
    app = fastapi.FastAPI(title="sklearn-gpt2 classifier", docs_url=None, redoc_url=None)

    def refuse(status: int, message: str) -> Any:
        return JSONResponse({"detail": message}, status_code=status)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "classes": classes, "quantization": classifier.quantization}

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return refuse(413, f"The body has {declared} bytes; at most {max_body_bytes}.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return refuse(413, f"The body exceeds {max_body_bytes} bytes.")
        try:
            payload = json.loads(bytes(body))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return refuse(400, f"The body is not valid JSON ({error}).")
        texts = _texts_of(payload, max_texts)
        if isinstance(texts, tuple):
            return refuse(*texts)
        proba = await run_in_threadpool(classifier.predict_proba, texts)
        labels = classifier.classes_[proba.argmax(axis=1)].tolist()
        rows = [dict(zip(map(str, classes), row.tolist(), strict=True)) for row in proba]
        return {"labels": labels, "probabilities": rows}

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Serve an export over HTTP until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_gpt2.serve",
        description="Serve predictions of an ONNX export of a classifier over HTTP.",
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="directory export_onnx wrote")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--max-texts", type=int, default=MAX_TEXTS, help="texts per request")
    parser.add_argument(
        "--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="largest request body"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="texts per model batch")
    args = parser.parse_args(argv)
    _, uvicorn = _import_web()
    app = create_app(
        args.model_dir,
        max_texts=args.max_texts,
        max_body_bytes=args.max_body_bytes,
        batch_size=args.batch_size,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
