"""Quality gates: thresholds a version's figures must meet for the job to exit 0."""

from __future__ import annotations

from collections.abc import Mapping

from service.evaluation import METRICS_BY_TASK
from service.jobs import JobError

# option name -> (metric, whether the figure must be at least (True) or at most (False) the limit)
GATES = {"min_accuracy": ("accuracy", True), "min_auc": ("roc_auc", True), "max_mse": ("mse", False)}


def required_metrics(task: str, limits: Mapping[str, float | None]) -> list[str]:
    """The metrics the set gates look at; a gate the task has no metric for is a usage error."""
    needed = []
    for option, limit in limits.items():
        if limit is None:
            continue
        metric = GATES[option][0]
        if metric not in METRICS_BY_TASK[task]:
            raise JobError(
                f"--{option.replace('_', '-')} does not apply to a {task} model (it has no {metric})."
            )
        needed.append(metric)
    return needed


def failure(figures: Mapping[str, float | None], limits: Mapping[str, float | None]) -> str | None:
    """The first gate that fails, as a one-line reason; None when all pass."""
    for option, limit in limits.items():
        if limit is None:
            continue
        metric, at_least = GATES[option]
        value = figures.get(metric)
        flag = f"--{option.replace('_', '-')} {limit}"
        if value is None:
            return f"{metric} is undefined on this data, so {flag} cannot pass."
        if (value < limit) if at_least else (value > limit):
            return f"{metric} {value:.6g} {'<' if at_least else '>'} {flag}."
    return None
