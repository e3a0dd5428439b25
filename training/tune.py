"""Try a config variant on its validation split only: train per seed, print validation accuracy, export nothing."""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from service.errors import DataFormatError
from training import config as configs
from training.__main__ import splits_for
from training.data import Splits
from training.errors import ConfigError, TrainingInputError


@dataclass(frozen=True)
class Trial:
    """One seeded fit, judged on validation data alone."""

    seed: int
    kept: float  # validation accuracy of the weights the run ends with (early stopping's best epoch)
    peak: float  # the highest validation accuracy of any epoch, for comparison
    kept_epoch: int
    epochs_run: int
    seconds: float


def blind(splits: Splits) -> Splits:
    """The same splits with the held-out test images removed, so no figure here can come from them."""
    if splits.validation is None:
        raise ConfigError("Tuning needs a validation split: set training.validation_split.")
    x, y = splits.test
    return dataclasses.replace(splits, test=(x[:0], y[:0]))


def trial(config: configs.Config, splits: Splits, out: TextIO) -> Trial:
    from training.train import train  # TensorFlow loads only once the arguments are known to be good

    trained = train(config, blind(splits), out, refit=False)
    accuracy = trained.history["val_accuracy"]
    kept = trained.best_epoch or len(accuracy)
    return Trial(
        config.training.seed, accuracy[kept - 1], max(accuracy), kept, len(accuracy), trained.seconds
    )


def summary(label: str, trials: Sequence[Trial]) -> str:
    """A Markdown table row: the variant, then mean (± sd when several seeds) of each figure."""

    def spread(values: Sequence[float], digits: int) -> str:
        mean = f"{statistics.fmean(values):.{digits}f}"
        return mean if len(values) < 2 else f"{mean} ± {statistics.stdev(values):.{digits}f}"

    cells = [
        label,
        ", ".join(str(t.seed) for t in trials),
        spread([t.kept for t in trials], 4),
        spread([t.peak for t in trials], 4),
        ", ".join(f"{t.kept_epoch}/{t.epochs_run}" for t in trials),
        spread([t.seconds for t in trials], 0),
    ]
    return "| " + " | ".join(cells) + " |"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.tune", description=__doc__)
    parser.add_argument("model", help="a config name, e.g. mnist")
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"), help="MNIST IDX folder or mnist.npz")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="any config key")
    parser.add_argument("--seeds", default="", help="comma-separated training seeds (default: the config's)")
    parser.add_argument(
        "--label", default="", help="the variant's name in the table (default: the --set list)"
    )
    return parser.parse_args(argv)


def seeds(text: str) -> list[int | None]:
    try:
        return [int(part) for part in text.split(",")] if text.strip() else [None]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected integers separated by commas, e.g. 42,1,2.") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        chosen = [configs.parse_assignment(text) for text in args.set]
        runs = [chosen + ([] if s is None else [("training.seed", str(s))]) for s in seeds(args.seeds)]
        loaded = [configs.load(args.model, run) for run in runs]
        if loaded[0].task == "regression":
            raise ConfigError(f"{args.model} is a regression model; tuning judges by validation accuracy.")
        trials = [trial(cfg, splits_for(cfg, args.data), sys.stderr) for cfg in loaded]
    except (TrainingInputError, DataFormatError) as exc:
        print(f"python -m training.tune: error: {exc}", file=sys.stderr)
        return 2
    print(summary(args.label or " ".join(args.set) or "as configured", trials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
