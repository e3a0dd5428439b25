"""serving.yaml's feedback, gate and shadow blocks: defaults, and one clear error per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from service.models.config import ModelConfigError, parse_model_config
from service.models.quality_config import FeedbackConfig, Requirement


def entry(raw: dict[str, Any]) -> Any:
    return parse_model_config({"models": {"mnist": raw}}).models["mnist"]


def test_the_issue_s_example() -> None:
    parsed = entry({"feedback": {"keep": 100000, "ttl_s": 86400}})
    assert parsed.feedback == FeedbackConfig(keep=100000, ttl_s=86400.0)
    assert parsed.gate is None and parsed.shadow is None and parsed.default_label is None


def test_a_gate_routes_unnamed_requests_to_its_label() -> None:
    parsed = entry({"gate": {"require": {"accuracy": ">= 0.95"}, "versus_label": {"log_loss": 0.01}}})
    assert parsed.gate.require == (Requirement("accuracy", ">=", 0.95),)
    assert parsed.gate.versus_label == (("log_loss", 0.01),)
    assert parsed.gate.label == "stable" == parsed.default_label and parsed.gate.reference == "card"
    assert entry({"gate": {"require": {"accuracy": "> 0.5"}, "route_default": False}}).default_label is None


def test_shadow_candidates() -> None:
    assert entry({"shadow": {"fraction": 0.1}}).shadow.candidate_version is None
    assert entry({"shadow": {"fraction": 1, "candidate": {"version": 3}}}).shadow.candidate_version == 3
    assert (
        entry({"shadow": {"fraction": 0.5, "candidate": {"label": "canary"}}}).shadow.candidate_label
        == "canary"
    )


def test_requirement_operators() -> None:
    assert Requirement("accuracy", ">=", 0.9).holds(0.9) and not Requirement("accuracy", ">", 0.9).holds(0.9)
    assert Requirement("log_loss", "<=", 0.2).holds(0.1) and not Requirement("log_loss", "<", 0.2).holds(0.2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"feedback": {"keep": 0}}, "keep must be a positive integer"),
        ({"feedback": {"ttl_s": -1}}, "ttl_s must be a positive number"),
        ({"feedback": {"forever": True}}, "feedback takes a mapping"),
        ({"gate": {"require": {"accuracy": "at least 0.9"}}}, 'require.accuracy must read like ">= 0.95"'),
        ({"gate": {}}, "give at least one threshold"),
        ({"gate": {"require": {"accuracy": ">= 0.9"}}, "labels": {"stable": 1}}, "is given by the gate"),
        ({"gate": {"versus_label": {"log_loss": -0.1}}}, "versus_label.log_loss must be a number >= 0"),
        ({"shadow": {"fraction": 0}}, "fraction must be a number in (0, 1]"),
        ({"shadow": {"fraction": 0.5, "candidate": "newest"}}, "candidate is 'latest'"),
        ({"explain": True}, "allowed keys are"),
    ],
)
def test_mistakes_name_the_model_and_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelConfigError, match="model 'mnist'") as caught:
        entry(raw)
    assert message in str(caught.value)
