"""Parsing of the serving config file (version policies, labels, batching)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.models.config import (
    BatchingConfig,
    ModelConfigError,
    VersionPolicy,
    load_model_config,
    parse_model_config,
    parse_policy,
)


@pytest.mark.parametrize(
    ("raw", "on_disk", "chosen"),
    [
        (None, [1, 2, 3], [3]),
        ("latest", [1, 2, 3], [3]),
        ({"latest": 2}, [1, 2, 3], [3, 2]),
        ({"latest": 5}, [1, 2], [2, 1]),
        ("all", [1, 2, 3], [3, 2, 1]),
        ({"specific": [1, 3]}, [1, 2, 3], [3, 1]),
        ({"specific": [4]}, [1, 2, 3], []),
        ("latest", [], []),
    ],
)
def test_policies_choose_versions(raw: Any, on_disk: list[int], chosen: list[int]) -> None:
    assert parse_policy(raw, "t").choose(on_disk) == chosen


@pytest.mark.parametrize(
    "raw",
    ["newest", {"latest": 0}, {"latest": "2"}, {"specific": []}, {"specific": [1, "x"]}, {"a": 1, "b": 2}, 3],
)
def test_bad_policies_are_rejected(raw: Any) -> None:
    with pytest.raises(ModelConfigError, match="version_policy"):
        parse_policy(raw, "model 'm'")


def test_full_config() -> None:
    config = parse_model_config(
        {
            "serve_unlisted": False,
            "models": {
                "mnist": {
                    "version_policy": {"latest": 2},
                    "labels": {"stable": 1, "canary": 2},
                    "batching": {"max_batch_size": 64, "batch_timeout_ms": 1.5, "enabled": True},
                }
            },
        }
    )
    entry = config.entry("mnist")
    assert entry.policy == VersionPolicy("latest", 2)
    assert entry.labels == {"stable": 1, "canary": 2}
    assert entry.batching == BatchingConfig(True, 64, 0.0015)
    assert not config.serve_unlisted
    assert config.entry("other").policy == VersionPolicy()


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([1, 2], "expected a mapping"),
        ({"modelz": {}}, "expected a mapping"),
        ({"models": [1]}, "'models' must map"),
        ({"models": {"../etc": {}}}, "not a valid model name"),
        ({"models": {"m": {"policy": "all"}}}, "allowed keys"),
        ({"models": {"m": {"labels": {"stable": "one"}}}}, "label 'stable'"),
        ({"models": {"m": {"labels": ["stable"]}}}, "labels must map"),
        ({"models": {"m": {"batching": {"max_batch_size": 0}}}}, "max_batch_size"),
        ({"models": {"m": {"batching": {"batch_timeout_ms": -1}}}}, "batch_timeout_ms"),
        ({"models": {"m": {"batching": {"size": 3}}}}, "batching takes"),
        ({"serve_unlisted": "yes"}, "serve_unlisted"),
    ],
)
def test_invalid_configs_name_the_problem(doc: Any, fragment: str) -> None:
    with pytest.raises(ModelConfigError, match=fragment):
        parse_model_config(doc)


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "serving.yaml"
    path.write_text("models:\n  linear:\n    version_policy: all\n")
    assert load_model_config(path).entry("linear").policy.kind == "all"
    path.write_text("models: [unclosed\n")
    with pytest.raises(ModelConfigError, match="not valid YAML"):
        load_model_config(path)
    with pytest.raises(ModelConfigError, match="Cannot read"):
        load_model_config(tmp_path / "missing.yaml")
    assert load_model_config(None).serve_unlisted
