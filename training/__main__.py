"""Command line: ``python -m training NAME|all [options]`` trains configs into a model repository."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from service.config import SettingsError, load_settings, quiet_tensorflow
from service.errors import DataFormatError
from training import config as configs
from training import data
from training.errors import TrainingInputError

if TYPE_CHECKING:
    from training.export import Exported

# Each shortcut flag is an override of one config key; --set reaches every other key.
FLAG_KEYS = {
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "optimizer": "training.optimizer",
    "schedule": "training.schedule",
    "loss": "training.loss",
    "validation_split": "training.validation_split",
    "seed": "training.seed",
    "early_stopping": "training.early_stopping",
    "refit": "training.refit",
    "layers": "layers",
}
SUMMARY_METRICS = {
    "classification": ("accuracy", "log_loss"),
    "binary": ("accuracy", "roc_auc"),
    "regression": ("mse", "mae", "r2"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")  # one line, no usage dump


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m training", description="Train models from configs into a repository.")
    parser.add_argument("model", help="a config name (linear, regression, binary, mnist, ...) or 'all'")
    try:
        defaults = load_settings()  # MODEL_REPOSITORY and MNIST_DIR, read as the service reads them
    except SettingsError as exc:
        parser.error(str(exc))
    parser.add_argument("--output", default=str(defaults.model_repository))
    parser.add_argument(
        "--data", default=defaults.mnist_dir and str(defaults.mnist_dir), help="MNIST IDX folder or mnist.npz"
    )
    for flag, key in FLAG_KEYS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, metavar="VALUE", help=f"sets {key}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="any config key")
    return parser.parse_args(argv)


def overrides(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Shortcut flags first, then --set in order, so a later --set wins."""
    chosen = [
        (key, getattr(args, flag)) for flag, key in FLAG_KEYS.items() if getattr(args, flag) is not None
    ]
    return chosen + [configs.parse_assignment(text) for text in args.set]


def prepare(args: argparse.Namespace) -> list[tuple[configs.Config, data.Splits]]:
    """Validate every config and load every data set before any training starts (fail fast)."""
    names = configs.available() if args.model == "all" else [args.model]
    chosen = overrides(args)
    loaded = [configs.load(name, chosen) for name in names]
    return [(config, splits_for(config, args.data)) for config in loaded]


def splits_for(config: configs.Config, data_path: str | None) -> data.Splits:
    return data.load(
        config.data.kind, config.data.params, config.data.seed, config.training.validation_split, data_path
    )


def run(jobs: list[tuple[configs.Config, data.Splits]], output: str, out: TextIO) -> None:
    # Imported here so that bad flags are reported without waiting for TensorFlow to load.
    from service.models.repository import Repository
    from training.export import export
    from training.models import build
    from training.train import train

    for config, _ in jobs:
        build(config)  # a layer spec that cannot be built fails now, not after hours of other models
    repo, results = Repository(output), []
    for config, splits in jobs:
        print(f"[{config.name}] training on {splits.sizes()} ({splits.provenance['source']})", file=out)
        result = export(config, splits, train(config, splits, out), repo)
        results.append(result)
        print(f"[{config.name}] wrote version {result.version} to {result.path}", file=out, flush=True)
    print_summary(results, out)


def print_summary(results: Sequence[Exported], out: TextIO) -> None:
    print("\nSummary (metrics on the 'test' split, or on a 'grid' of the true function):", file=out)
    for r in results:
        figures = " ".join(f"{m}={r.metrics[m]:.4f}" for m in SUMMARY_METRICS[r.task])
        print(f"  {r.name:<11} v{r.version}  {r.metrics_split:<4}  {figures}  -> {r.path}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow()  # before anything imports TensorFlow: keep its C++ banner out of the progress
    args = parse_args(argv)
    try:
        jobs = prepare(args)
        run(jobs, args.output, sys.stdout)
    except (TrainingInputError, DataFormatError) as exc:
        print(f"python -m training: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
