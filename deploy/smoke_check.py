"""Smoke-check a running server: wait until ready, then one real prediction per protocol.

Standard library only, so it runs in the serving image (compose service ``smoke``) or on any host:

    python deploy/smoke_check.py --server http://127.0.0.1:8501 [--model mnist] [--timeout 120] \
        [--token-file smoke.token]

``--grpc host:8500`` also checks the gRPC port (readiness and a V2 ModelInfer); that step needs
tritonclient[grpc], which the serving image has.

The model's inputs are read from its V2 metadata and filled with zeros, so the check works for
whatever models the repository holds. With ``--token-file`` (a token with the ``infer`` and
``metrics`` scopes) every request carries it, and the check also makes sure the server refuses a
request without it: a server that should be guarded but is open fails the check. Exit status 0
when every step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.error
import urllib.request
from typing import Any

ZERO = {"BOOL": False, "BYTES": ""}  # every numeric datatype: 0


def read_token(path: str) -> str:
    """The token alone in ``path``; SystemExit naming the file (never its content) if unusable."""
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        raise SystemExit(f"FAIL: --token-file {path}: {exc.strerror}.") from None
    if not token or len(token.split()) != 1:
        raise SystemExit(
            f"FAIL: --token-file {path} must hold one token (it is empty or holds several words)."
        )
    return token


def call(server: str, path: str, body: Any = None, timeout: float = 30.0, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(server.rstrip("/") + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()


def wait_ready(server: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            call(server, "/v2/health/ready", timeout=5)
            return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"FAIL: {server} not ready after {timeout:.0f} s: {exc}") from exc
            time.sleep(1)


def pick_model(server: str, wanted: str | None, token: str | None) -> str:
    # GET /v2/models needs only the 'infer' scope (Triton's /v2/repository/index needs 'admin').
    index = call(server, "/v2/models", token=token)["models"]
    ready = sorted({entry["name"] for entry in index if entry.get("state") == "AVAILABLE"})
    print(f"ready models: {ready}")
    if wanted is not None:
        if wanted not in ready:
            raise SystemExit(f"FAIL: model {wanted!r} is not READY.")
        return wanted
    if not ready:
        raise SystemExit("FAIL: the server is ready but lists no READY model.")
    return ready[0]


def check_refused_without_token(server: str, path: str) -> None:
    """A check run with a token expects a guarded server: the same request without it must be a 401."""
    try:
        call(server, path)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            print(f"without a token: {path} answered 401 (auth is on)")
            return
        raise
    raise SystemExit(f"FAIL: {path} answered without a token: the server is not guarded.")


def zeros_request(metadata: dict[str, Any]) -> dict[str, Any]:
    inputs = []
    for spec in metadata["inputs"]:
        shape = [1 if dim is None or int(dim) < 0 else int(dim) for dim in spec["shape"]] or [1]
        value = ZERO.get(spec["datatype"], 0)
        inputs.append({**spec, "shape": shape, "data": [value] * math.prod(shape)})
    return {"inputs": inputs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://127.0.0.1:8501")
    parser.add_argument("--model", help="model to query (default: the first READY one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    parser.add_argument("--token-file", help="file holding a bearer token (scopes infer and metrics)")
    parser.add_argument("--grpc", help="host:port of the gRPC server to check too (needs tritonclient[grpc])")
    args = parser.parse_args(argv)
    try:
        token = None if args.token_file is None else read_token(args.token_file)
        wait_ready(args.server, args.timeout)
        if token is not None:
            check_refused_without_token(args.server, "/v2/models")
        name = pick_model(args.server, args.model, token)
        metadata = call(args.server, f"/v2/models/{name}", token=token)
        request = zeros_request(metadata)
        result = call(args.server, f"/v2/models/{name}/infer", request, token=token)
        print(f"v2 infer {name}: outputs {[(o['name'], o['shape']) for o in result['outputs']]}")
        if len(request["inputs"]) == 1:  # TF Serving's columnar form, one unnamed input
            body = {"inputs": _nested(request["inputs"][0])}
            reply = call(args.server, f"/v1/models/{name}:predict", body, token=token)
            if "outputs" not in reply:
                raise SystemExit(f"FAIL: v1 predict answered without 'outputs': {str(reply)[:300]}")
            print(f"v1 predict {name}: ok")
        if args.grpc:
            check_grpc(args.grpc, name, request, token)
        exposition = call(args.server, "/metrics", token=token)
        if "serving_requests_total" not in exposition:
            raise SystemExit("FAIL: /metrics has no serving_requests_total.")
    except urllib.error.HTTPError as exc:
        print(f"FAIL: {exc.code} from {exc.url}: {exc.read()[:500]!r}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        print(f"FAIL: {exc!r}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    print("smoke check passed")
    return 0


def check_grpc(target: str, name: str, request: dict[str, Any], token: str | None) -> None:
    """The V2 gRPC service: ready, and the same zeros request answered (with the token as metadata)."""
    import numpy as np  # the serving image has them; the HTTP steps above need only the stdlib
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException, triton_to_np_dtype

    client = triton.InferenceServerClient(target)
    headers = None if token is None else {"authorization": f"Bearer {token}"}
    try:
        if not client.is_server_ready(client_timeout=30):
            raise SystemExit(f"FAIL: gRPC {target} says it is not ready.")
        inputs = []
        for tensor in request["inputs"]:
            item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
            dtype = object if tensor["datatype"] == "BYTES" else triton_to_np_dtype(tensor["datatype"])
            item.set_data_from_numpy(np.array(tensor["data"], dtype=dtype).reshape(tensor["shape"]))
            inputs.append(item)
        result = client.infer(name, inputs, headers=headers, client_timeout=30)
    except InferenceServerException as exc:
        raise SystemExit(f"FAIL: gRPC {target}: {exc}") from exc
    finally:
        client.close()
    outputs = [(o.name, list(o.shape)) for o in result.get_response().outputs]
    print(f"grpc infer {name}: outputs {outputs}")


def _nested(tensor: dict[str, Any]) -> Any:
    """The flat V2 data reshaped into the nested lists TF Serving's columnar 'inputs' take."""
    data: Any = tensor["data"]
    for dim in reversed(tensor["shape"][1:]):
        data = [data[i : i + dim] for i in range(0, len(data), dim)]
    return data


if __name__ == "__main__":
    sys.exit(main())
