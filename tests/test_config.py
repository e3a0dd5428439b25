"""Settings come from the environment once, typed and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.port == 8501 and settings.host == "127.0.0.1"
    assert settings.grpc_port == 8500  # TF Serving's gRPC port beside its REST one
    assert settings.model_repository == Path("models")
    assert settings.max_body_bytes == 64 * 1024 * 1024
    assert settings.batching and not settings.allow_nonfinite


def test_environment_overrides() -> None:
    settings = load_settings(
        {"PORT": "9000", "MODEL_REPOSITORY": "/srv/models", "ALLOW_NONFINITE": "true", "BATCH_TIMEOUT": "0"}
    )
    assert settings.port == 9000
    assert settings.model_repository == Path("/srv/models")
    assert settings.allow_nonfinite
    assert settings.batch_timeout == 0.0


def test_model_config_defaults_to_repository_file(tmp_path: Path) -> None:
    assert load_settings({"MODEL_REPOSITORY": str(tmp_path)}).model_config_path is None
    (tmp_path / "serving.yaml").write_text("models: {}\n")
    assert load_settings({"MODEL_REPOSITORY": str(tmp_path)}).model_config_path == tmp_path / "serving.yaml"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PORT": "http"}, "PORT='http' is not a valid int"),
        ({"PORT": "0"}, "port must be positive"),
        ({"BATCHING": "maybe"}, "BATCHING='maybe'"),
        ({"POLL_INTERVAL": "-1"}, "poll_interval"),
        ({"BATCH_TIMEOUT": "-0.5"}, "batch_timeout"),
        ({"WORKERS": "0"}, "workers"),
        ({"GRPC_PORT": "-1"}, "GRPC_PORT must be 0 .off. or a port"),
        ({"GRPC_PORT": "70000"}, "got 70000"),
        ({"GRPC_PORT": "8501"}, "other than PORT"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(env)


def test_grpc_port_zero_turns_grpc_off() -> None:
    assert load_settings({"GRPC_PORT": "0"}).grpc_port == 0
    assert load_settings({"GRPC_PORT": "9500"}).grpc_port == 9500


def test_intra_op_threads_share_the_cores() -> None:
    settings = load_settings({"WORKERS": "2"})
    assert settings.intra_op_threads >= 1
    assert load_settings({"TF_INTRA_OP_THREADS": "3"}).intra_op_threads == 3


def test_quality_settings() -> None:
    settings = load_settings(
        {"LOG_FORMAT": "json", "OTEL_TRACES_EXPORTER": "otlp", "QUALITY_INTERVAL": "2.5"}
    )
    assert (settings.log_format, settings.traces_exporter, settings.quality_interval) == ("json", "otlp", 2.5)
    assert settings.otel_service_name == "model-serving"
    for env, fragment in (
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER must be one of none, otlp, console"),
        ({"QUALITY_INTERVAL": "0"}, "quality_interval must be a positive number"),
    ):
        with pytest.raises(SettingsError, match=fragment):
            load_settings(env)
