"""Metadata-routing requests (``set_fit_request``) as builtins, so they survive pickling.

scikit-learn keeps an estimator's requests in its ``_metadata_request``; the pickle state
holds only builtins, so the requests travel as ``{method: {parameter: alias}}`` and are set
again on loading (a ``GridSearchCV(n_jobs=2)`` pickles its estimator for each worker).
"""

from __future__ import annotations

from typing import Any

from sklearn.utils._metadata_requests import SIMPLE_METHODS


def requests_to_builtins(estimator: Any) -> dict[str, dict[str, Any]] | None:
    """The requests set on ``estimator`` (None if none were set)."""
    request = vars(estimator).get("_metadata_request")
    if request is None:
        return None
    return {
        method: dict(getattr(request, method).requests)
        for method in SIMPLE_METHODS
        if hasattr(request, method)
    }


def requests_from_builtins(estimator: Any, requests: Any, what: str) -> None:
    """Set the requests :func:`requests_to_builtins` described on ``estimator``."""
    if requests is None:
        return
    if not isinstance(requests, dict):
        raise ValueError(f"{what} is corrupt: its metadata-routing requests are malformed.")
    request = estimator._get_metadata_request()
    for method, params in requests.items():
        if method not in SIMPLE_METHODS or not isinstance(params, dict):
            raise ValueError(f"{what} is corrupt: it names an unknown routed method {method!r}.")
        for param, alias in params.items():
            if not isinstance(param, str) or not (alias is None or isinstance(alias, (bool, str))):
                raise ValueError(f"{what} is corrupt: its request for {param!r} is malformed.")
            getattr(request, method).add_request(param=param, alias=alias)
    vars(estimator)["_metadata_request"] = request
