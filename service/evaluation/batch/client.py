"""Scoring through the running service: Open Inference Protocol requests with binary tensor data.

Binary tensors carry float32 inputs and outputs bit for bit (no decimal round trip), so the scores
are exactly those an offline run computes, at a quarter of JSON's size and without JSON parsing
on either side. The version is pinned when the scorer starts (``/v2/models/<name>`` lists what is
served); every request names it, so a hot reload mid-job cannot mix versions, and a version that
goes away fails the job clearly. Connection errors, timeouts, 408, 429, 502, 503 and 504 are retried
with exponential backoff and jitter; 400, 413 and 422 reject the rows sent (the job bisects); 401
and 403 (no token, an unknown or revoked one, a missing scope) stop the job at once: waiting does
not fix a credential.

With a token (``--token-file``), every request carries ``Authorization: Bearer <token>``; the token
is read from a file so it stays out of argv (``ps``, shell history) and is never printed.

The model's task comes from its V2 metadata (the derived outputs: ``probabilities`` for a
classifier, ``probability`` for a binary model, else a regressor) and its class labels from TF
Serving's ``:classify``, which lists every class label in class order.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import requests

from service.errors import InvalidInput, JobError
from service.evaluation.batch.scoring import RowsRejected
from service.evaluation.options import score_output
from service.models.card import ModelCard, TensorSpec
from service.models.outputs import PROBABILITIES, PROBABILITY
from service.protocol.v2.datatypes import datatype_of, decode_tensor, encode_tensor, spec_dtype_of
from service.protocol.v2.response import HEADER_LENGTH

# 408: the server gave up waiting for the body (the job was paused, the network stalled); sending
# the same request again is what RFC 9110 (15.5.9) expects of a client.
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
REJECT_STATUSES = frozenset({400, 413, 422})
AUTH_STATUSES = frozenset({401, 403})


def read_token_file(path: Path) -> str:
    """The bearer token alone in ``path`` (surrounding whitespace ignored); JobError naming the file,
    never its content, when it is missing, empty or holds more than one word."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobError(f"--token-file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(
            f"--token-file {path} cannot be read: {getattr(exc, 'strerror', None) or exc}."
        ) from None
    token = text.strip()
    if not token:
        raise JobError(
            f"--token-file {path} is empty; it should hold one token (python -m service.auth new)."
        )
    if len(token.split()) != 1:
        raise JobError(f"--token-file {path} holds more than one word; it should hold the token alone.")
    return token


@dataclass(frozen=True)
class Backoff:
    """``retries`` waits of ``base * 2**n`` seconds (at most ``cap``), each scaled by a random 0.5-1."""

    retries: int = 8
    base: float = 0.25
    cap: float = 8.0

    def delays(self) -> Iterator[float]:
        for attempt in range(self.retries):
            yield min(self.cap, self.base * 2**attempt) * random.uniform(0.5, 1.0)


class HttpScorer:
    def __init__(
        self,
        url: str,
        name: str,
        version: int | None = None,
        *,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        session: requests.Session | None = None,
        pool_size: int = 4,
        token: str | None = None,
    ) -> None:
        self.where = url.rstrip("/")
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.session = session or _session(pool_size)
        self._has_token = token is not None
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.card = self._card(name, self._pin(name, version))
        self._output = score_output(self.card)
        self._path = f"/v2/models/{name}/versions/{self.card.version}/infer"

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        body, header_length = encode_request(inputs, self._output)
        headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(header_length)}
        response = self._send("POST", self._path, data=body, headers=headers)
        if response.status_code in REJECT_STATUSES:
            raise RowsRejected(_error(response))
        if response.status_code == 404:
            raise JobError(
                f"{self.where} no longer serves model {self.card.name!r} version {self.card.version}: "
                f"{_error(response)}"
            )
        _check(response, self._path)
        scores = decode_response(response, self._output)
        return scores if self.card.task == "classification" else scores.reshape(-1)

    def close(self) -> None:
        self.session.close()

    def _pin(self, name: str, version: int | None) -> int:
        served = sorted(int(v) for v in self._json("GET", f"/v2/models/{name}")["versions"])
        if not served:
            raise JobError(f"{self.where} has no version of model {name!r} ready.")
        if version is not None and version not in served:
            raise JobError(
                f"{self.where} does not serve model {name!r} version {version} (it serves {served})."
            )
        return served[-1] if version is None else version

    def _card(self, name: str, version: int) -> ModelCard:
        meta = self._json("GET", f"/v2/models/{name}/versions/{version}")
        inputs = tuple(_spec(t) for t in meta["inputs"])
        outputs = {t["name"]: _spec(t) for t in meta["outputs"]}
        score = next((n for n in (PROBABILITIES, PROBABILITY) if n in outputs), None)
        task = {PROBABILITIES: "classification", PROBABILITY: "binary", None: "regression"}[score]
        labels = None if score is None else self._class_labels(name, version, inputs)
        kept = tuple(outputs.values()) if score is None else (outputs[score],)
        return ModelCard(name, version, task, "serving_default", inputs, kept, labels)

    def _class_labels(
        self, name: str, version: int, inputs: tuple[TensorSpec, ...]
    ) -> tuple[str, ...] | None:
        example = {s.name: [0] * math.prod(max(d, 1) for d in s.shape[1:]) for s in inputs}
        doc = self._json(
            "POST", f"/v1/models/{name}/versions/{version}:classify", json={"examples": [example]}
        )
        labels = tuple(str(label) for label, _ in doc["results"][0])
        return labels if any(labels) else None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        _check(response, path)
        return response.json()

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The answer to a request, retried on connection errors, timeouts and busy statuses."""
        problem = ""
        for delay in [*self.backoff.delays(), None]:
            try:
                response = self.session.request(method, self.where + path, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in AUTH_STATUSES:
                    raise JobError(self._refused(response, path))
                if response.status_code not in RETRY_STATUSES:
                    return response
                problem = f"HTTP {response.status_code}: {_error(response)}"
            if delay is not None:
                time.sleep(delay)
        raise JobError(f"{self.where}{path} failed after {self.backoff.retries} retries; last: {problem}")

    def _refused(self, response: requests.Response, path: str) -> str:
        """The server's own reason (it names the missing scope or the unknown token), plus what to do."""
        hint = "" if self._has_token else " Pass --token-file with a token holding the 'infer' scope."
        return f"{self.where}{path} refused the job (HTTP {response.status_code}): {_error(response)}{hint}"


def encode_request(inputs: dict[str, np.ndarray], output: str) -> tuple[bytes, int]:
    """A V2 infer body with every input as binary data, asking for ``output`` as binary data."""
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes | memoryview] = []
    for name, array in inputs.items():
        blobs.append(_raw(array))
        parameters = {"binary_data_size": len(blobs[-1])}
        tensors.append(
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype_of(array.dtype),
                "parameters": parameters,
            }
        )
    header = orjson.dumps(
        {"inputs": tensors, "outputs": [{"name": output, "parameters": {"binary_data": True}}]}
    )
    return b"".join([header, *blobs]), len(header)


def _raw(array: np.ndarray) -> bytes | memoryview:
    """A tensor's binary data; numbers as a view of the array, so the body is their only copy."""
    if array.dtype.kind in "OSU":
        return encode_tensor(array)
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return little.data.cast("B")


def decode_response(response: requests.Response, output: str) -> np.ndarray:
    """The one requested output of a V2 infer response (binary, or JSON if the server chose so)."""
    content = response.content
    length = response.headers.get(HEADER_LENGTH)
    header_length = int(length) if length else len(content)
    try:
        doc = orjson.loads(content[:header_length])
        tensor = next(t for t in doc["outputs"] if t["name"] == output)
        shape = tuple(tensor["shape"])
        size = tensor.get("parameters", {}).get("binary_data_size")
        if size is None:
            return np.asarray(tensor["data"], dtype=spec_dtype_of(tensor["datatype"])).reshape(shape)
        raw = memoryview(content)[header_length : header_length + size]
        return decode_tensor(raw, tensor["datatype"], math.prod(shape), f"Output {output!r}").reshape(shape)
    except (orjson.JSONDecodeError, KeyError, StopIteration, TypeError, ValueError, InvalidInput) as exc:
        raise JobError(f"The server's infer response is not a V2 response with {output!r}: {exc}") from None


def _spec(tensor: dict[str, Any]) -> TensorSpec:
    return TensorSpec(tensor["name"], spec_dtype_of(tensor["datatype"]), tuple(tensor["shape"]))


def _check(response: requests.Response, path: str) -> None:
    if response.status_code != 200:
        raise JobError(f"{response.url or path} answered HTTP {response.status_code}: {_error(response)}")


def _error(response: requests.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason or "no details"


def _session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
