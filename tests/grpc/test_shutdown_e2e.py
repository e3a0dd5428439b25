"""SIGTERM: in-flight gRPC calls finish before the models drain, new calls are refused, the exit is clean."""

from __future__ import annotations

import shutil
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest

from service.models.repository import Repository
from tests.grpc.stall_model import export_stall
from tests.grpc.test_batching_e2e import predict, until_busy
from tests.server import Server

pytestmark = pytest.mark.e2e


def test_sigterm_finishes_in_flight_calls_and_refuses_new_ones(tiny_template: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_template, tmp_path / "models")
    export_stall(Repository(tmp_path / "models"))
    server = Server(
        tmp_path / "models", tmp_path / "server.log", WORKERS=1, DATA_DIR=tmp_path / "var"
    ).start()
    assert server.process is not None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            stalled = pool.submit(
                predict, server.grpc_target, "stall", "x", np.array([[4.0, 1000.0]], np.float32)
            )
            until_busy(server, 1)
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while True:  # once the stop has begun, new calls are turned away
                try:
                    predict(server.grpc_target, "regressor", "x", np.ones(1, np.float32), timeout=0.5)
                except grpc.RpcError as refused:
                    if refused.code() == grpc.StatusCode.UNAVAILABLE:
                        assert not stalled.done()  # the stop began while the stalled call was in flight
                        break
                    # A call caught in the very moment the stop begins is held until the grace period
                    # ends or cancelled (grpc's race, not ours); the next one is refused.
                    assert refused.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
                assert time.monotonic() < deadline, "new calls were still answered"
                time.sleep(0.05)
            answer = stalled.result(timeout=60)  # the call in flight when SIGTERM came
        assert list(answer.outputs["y"].tensor_content) == list(np.array([8.0], "<f4").tobytes())
        assert server.process.wait(60) == 0, server.log()
    finally:
        server.stop()


def test_a_taken_grpc_port_stops_the_server_instead_of_rebooting_workers(
    tiny_template: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:  # a plain listener: no SO_REUSEPORT, so gRPC cannot share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(tiny_template, tmp_path / "server.log", WORKERS=1, GRPC_PORT=port)
        with pytest.raises(RuntimeError, match="server exited"):
            server.start(timeout=120)
        server.stop()
    assert "gRPC" in server.log() and "did not start" in server.log()
