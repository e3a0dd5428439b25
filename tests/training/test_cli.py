"""python -m training: flags become overrides; every bad input is one stderr line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from training.__main__ import FLAG_KEYS, overrides, parse_args

ROOT = Path(__file__).resolve().parents[2]
Cli = Callable[..., tuple[int, str, str]]


def test_flags_map_to_config_keys_and_set_comes_last() -> None:
    args = parse_args(
        [
            *("mnist", "--epochs", "3", "--learning-rate", "0.01", "--layers", "flatten,dense:10:softmax"),
            *("--set", "training.epochs=4", "--set", "data.seed=1"),
        ]
    )
    assert overrides(args) == [
        ("training.epochs", "3"),
        ("training.learning_rate", "0.01"),
        ("layers", "flatten,dense:10:softmax"),
        ("training.epochs", "4"),
        ("data.seed", "1"),
    ]


def test_every_training_key_has_a_flag() -> None:
    from dataclasses import fields

    from training.config import FitConfig

    assert {f"training.{f.name}" for f in fields(FitConfig)} <= set(FLAG_KEYS.values())


def test_output_and_data_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_REPOSITORY", "/srv/models")
    monkeypatch.setenv("MNIST_DIR", "/srv/mnist")
    args = parse_args(["mnist"])
    assert (args.output, args.data) == ("/srv/models", "/srv/mnist")
    monkeypatch.delenv("MODEL_REPOSITORY")
    monkeypatch.delenv("MNIST_DIR")
    assert (parse_args(["mnist"]).output, parse_args(["mnist"]).data) == ("models", None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["linear", "--epochs", "-3"], "training.epochs must be an integer >= 1, got -3"),
        (["linear", "--epochs", "many"], "training.epochs must be an integer >= 1, got 'many'"),
        (["binary", "--optimizer", "adamm"], "training.optimizer 'adamm' is not supported"),
        (["regression", "--loss", "hinge"], "training.loss 'hinge' is not supported for a regression model"),
        (["binary", "--validation-split", "1.5"], "validation_split must be between 0 and 1"),
        (["binary", "--validation-split", "-0.1"], "validation_split must be between 0 and 1"),
        (["mnist", "--layers", "flatten,dense:10:softmx"], "'softmx' is not a known activation"),
        (["mnist", "--layers", "flatten,dense:ten:softmax"], "units 'ten' is not an integer"),
        (["mnist", "--layers", "flatten,dense"], "expected dense:units"),
        (["linear", "--batch-size", "0"], "training.batch_size must be an integer >= 1"),
        (["linear", "--learning-rate", "-1"], "training.learning_rate must be greater than 0"),
        (["linear", "--seed", "x"], "training.seed must be an integer"),
        (["linear", "--set", "training.epoch=5"], "Unknown config key training.epoch"),
        (["linear", "--set", "epochs"], "expected key.path=value"),
        (["nope"], "Unknown model 'nope'; choose one of: binary, linear, mnist"),
        (["mnist", "--data", "/no/such/place"], "no such file or folder; pass --data DIR_OR_NPZ"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(cli: Cli, args: list[str], message: str) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["linear", "--bogus"], "unrecognized arguments: --bogus"),
        (["linear", "--epochs"], "argument --epochs: expected one argument"),
        ([], "the following arguments are required: model"),
    ],
)
def test_argument_errors_are_one_line_without_usage(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(args)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and message in err


def test_corrupt_data_is_reported_in_one_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"not a zip")
    code, _, err = cli("mnist", "--data", str(tmp_path / "mnist.npz"))
    assert code == 2 and err.count("\n") == 1 and "is not a readable npz file" in err


def test_all_validates_every_config_before_training(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("all", "--output", str(tmp_path / "models"), "--data", str(tmp_path / "none"))
    assert code == 2 and "no such file or folder" in err
    assert out == "" and not (tmp_path / "models").exists()  # nothing trained before the MNIST check


def test_an_unbuildable_layer_stack_is_a_config_error(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("binary", "--layers", "maxpool,dense:1:sigmoid", "--output", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "Layer maxpool:2 cannot take input of shape" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["linear", "--epochs", "-3"], "training.epochs must be an integer >= 1, got -3"),
        (["linear", "--bogus"], "unrecognized arguments: --bogus"),
        (["mnist"], "pass --data DIR_OR_NPZ"),
    ],
)
def test_real_process_exit_code_and_no_traceback(args: list[str], message: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MNIST_DIR", "MODEL_REPOSITORY")}
    if args == ["mnist"]:
        args = ["mnist", "--data", str(tmp_path / "absent")]
    done = subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr
