"""Held-out accuracy of a published MNIST model by where each held-out digit sits in its source file.

The shared sample is the first 9,000 images of MNIST's official test set, whose first 5,000 come from
NIST's SD-3 (Census Bureau employees) and the rest from SD-1 (high-school students), per the MNIST page
(yann.lecun.com/exdb/mnist); so ``--cut 5000`` splits the card's held-out figure by writer pool. Only
a source that is one IDX set, split with the card's seed, has positions to report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from service.errors import DataFormatError
from service.models.repository import Repository
from training import config as configs
from training import data
from training.errors import DataUnavailable, TrainingInputError

Z95 = 1.96  # two-sided 95% normal interval


@dataclass(frozen=True)
class Part:
    """The held-out digits whose source positions lie in [start, stop)."""

    start: int
    stop: int
    count: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else math.nan

    @property
    def margin(self) -> float:
        """Half-width of the 95% normal interval for the accuracy (binomial sampling of these digits)."""
        p = self.accuracy
        return Z95 * math.sqrt(p * (1 - p) / self.count) if self.count else math.nan


def parts(positions: np.ndarray, correct: np.ndarray, cuts: Sequence[int], total: int) -> list[Part]:
    """Tally ``correct`` (one flag per held-out digit at ``positions``) between consecutive cuts."""
    edges = [0, *sorted(set(cuts)), total]
    found = []
    for start, stop in itertools.pairwise(edges):
        inside = (positions >= start) & (positions < stop)
        found.append(Part(start, stop, int(inside.sum()), int(correct[inside].sum())))
    return found


def held_out(card: dict, folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(positions, images, labels, source size) of the card's held-out digits, rebuilt from its config."""
    config = configs.from_dict(card["name"], card["config"])
    source = data.find_mnist(folder)
    if source.test is not None or config.data.kind != data.MNIST:
        raise DataUnavailable(
            f"{folder}: positions exist only for a single IDX set split by the card's seed."
        )
    recorded = [f["sha256"] for f in card["data"].get("files", [])]
    if [f["sha256"] for f in source.describe()["files"]] != recorded:
        raise DataUnavailable(f"{folder} holds other files than {card['name']} was trained on.")
    count = len(source.train.labels)
    test_size = {**data.parameters(data.MNIST), **config.data.params}["test_size"]
    _, positions = data.holdout_indices(count, test_size, config.data.seed)
    images = source.train.images[positions].astype(np.float32) / np.float32(255.0)
    return positions, images, source.train.labels[positions], count


def report(repo: Repository, name: str, version: int, folder: str, cuts: Sequence[int]) -> list[Part]:
    from training.evaluate import predict  # TensorFlow loads only once the arguments are known to be good

    card = json.loads(repo.card_path(name, version).read_text())
    positions, images, labels, count = held_out(card, folder)
    predicted = predict(repo.version_dir(name, version), "classification", images).argmax(axis=1)
    return parts(positions, predicted == labels, cuts, count)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.origins", description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--model-repository", default=os.environ.get("MODEL_REPOSITORY", "models"))
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"), help="the card's MNIST IDX folder")
    parser.add_argument("--cut", type=int, action="append", default=[], help="a source position to split at")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        repo = Repository(args.model_repository)
        if args.version not in repo.versions(args.model):
            raise DataUnavailable(f"{args.model_repository} has no version {args.version} of {args.model!r}.")
        if args.data is None:
            raise DataUnavailable("Pass --data: the MNIST IDX folder the model was trained on.")
        found = report(repo, args.model, args.version, args.data, args.cut)
    except (TrainingInputError, DataFormatError) as exc:
        print(f"python -m training.origins: error: {exc}", file=sys.stderr)
        return 2
    print("| source positions | held-out digits | accuracy (95% interval) |\n| --- | --- | --- |")
    for part in found:
        figure = f"{part.accuracy:.4f} ± {part.margin:.4f}" if part.count else "-"
        print(f"| {part.start}-{part.stop - 1} | {part.count} | {figure} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
