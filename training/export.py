"""Publish a trained model as the next repository version: SavedModel, held-out metrics, curves, card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.models.repository import CURVES_FILE, Repository
from training.card import build_card
from training.config import Config
from training.data import Splits
from training.evaluate import score_with_reference
from training.plots import save_curves
from training.signature import write_saved_model
from training.train import Trained


@dataclass(frozen=True)
class Exported:
    name: str
    task: str
    version: int
    path: Path
    metrics: dict[str, Any]
    metrics_split: str


def export(config: Config, splits: Splits, trained: Trained, repo: Repository) -> Exported:
    """Write, score and commit; any failure before the commit leaves no version behind."""
    with repo.stage(config.name) as staged:
        write_saved_model(trained.model, config.task, str(staged.path))
        # Scored through the exported signature, so the card describes exactly what will be served.
        metrics, reference = score_with_reference(staged.path, config.task, *splits.test)
        save_curves(trained.history, config.name, staged.assets_extra / CURVES_FILE)
        reference["split"] = splits.metrics_split
        version = staged.commit(build_card(config, splits, trained, metrics, reference))
    path = repo.version_dir(config.name, version)
    return Exported(config.name, config.task, version, path, metrics, splits.metrics_split)
