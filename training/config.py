"""Typed training configs: read a packaged YAML, apply ``key.path=value`` overrides, validate every value."""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from importlib import resources
from typing import Any

import yaml

from service.models.card import TASKS
from training import data
from training.errors import ConfigError
from training.layerspec import LayerSpec, parse_layers

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam")
SCHEDULES = ("constant", "cosine")
LOSSES = {
    "regression": ("mse", "mae", "huber", "log_cosh"),
    "binary": ("binary_crossentropy", "binary_focal_crossentropy"),
    "classification": ("sparse_categorical_crossentropy",),
}
# The exported signature promises probabilities (or a plain number), so the last layer is fixed per task.
HEADS = {"classification": "dense:10:softmax", "binary": "dense:1:sigmoid", "regression": "dense:1:linear"}
# What early stopping may watch: the validation loss or the metric training.models tracks for the task.
MONITORS = {
    "regression": ("val_loss", "val_mae"),
    "binary": ("val_loss", "val_accuracy"),
    "classification": ("val_loss", "val_accuracy"),
}


@dataclass(frozen=True)
class DataConfig:
    kind: str
    seed: int
    params: dict[str, Any]


@dataclass(frozen=True)
class EarlyStopping:
    """Stop once ``monitor`` has not improved for ``patience`` epochs; keep the best epoch's weights."""

    monitor: str
    patience: int


@dataclass(frozen=True)
class FitConfig:
    optimizer: str
    learning_rate: float
    schedule: str
    loss: str
    epochs: int
    batch_size: int
    validation_split: float | None
    seed: int
    early_stopping: EarlyStopping | None = None
    # Fit again from scratch on train + validation, for the epochs the validation run chose.
    refit: bool = False


# Keys a config may leave out; every config written before they existed means exactly these values.
FIT_DEFAULTS: dict[str, Any] = {"early_stopping": None, "refit": False}


@dataclass(frozen=True)
class Config:
    """One model's complete recipe; ``name`` is the config file's stem and the exported model's name."""

    name: str
    task: str
    description: str
    data: DataConfig
    layers: tuple[LayerSpec, ...]
    training: FitConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "description": self.description,
            "data": asdict(self.data),
            "layers": [str(layer) for layer in self.layers],
            "training": asdict(self.training),
        }


def available() -> list[str]:
    """Names of the packaged configs."""
    folder = resources.files("training") / "configs"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_raw(name: str) -> dict[str, Any]:
    if name not in available():
        raise ConfigError(f"Unknown model {name!r}; choose one of: {', '.join(available())} or all.")
    text = (resources.files("training") / "configs" / f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load(name: str, overrides: Iterable[tuple[str, str]] = ()) -> Config:
    """The packaged config ``name`` with ``(key.path, value)`` overrides applied, validated."""
    return from_dict(name, apply_overrides(read_raw(name), overrides))


def parse_assignment(text: str) -> tuple[str, str]:
    """Split a ``--set`` argument ``key.path=value``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected key.path=value, e.g. training.epochs=3.")
    return key.strip(), value


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A copy of ``raw`` with each value (YAML syntax: 3, 0.5, null, [a, b]) set at its key path."""
    result = copy.deepcopy(dict(raw))
    for path, text in overrides:
        *parents, leaf = path.split(".")
        node = result
        for depth, key in enumerate(parents):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Cannot set {path!r}: {'.'.join(parents[: depth + 1])} is not a section.")
        try:
            node[leaf] = yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError as exc:
            raise ConfigError(f"Cannot set {path!r}: {text!r} is not a valid value.") from exc
    return result


def from_dict(name: str, raw: Any) -> Config:
    """Validate a raw config mapping; every problem is a ConfigError naming the key at fault."""
    top = _section(raw, "", ("task", "description", "data", "layers", "training"))
    task = _choice(top["task"], "task", TASKS)
    layers = parse_layers(top["layers"])
    if str(layers[-1]) != HEADS[task]:
        raise ConfigError(f"layers: a {task} model must end with {HEADS[task]}, not {layers[-1]}.")
    return Config(
        name, task, str(top["description"]), _data(top["data"]), layers, _fit(top["training"], task)
    )


def _data(raw: Any) -> DataConfig:
    section = _section(raw, "data", [f.name for f in fields(DataConfig)])
    kind = _choice(section["kind"], "data.kind", data.KINDS)
    defaults = data.parameters(kind)
    params = _section(section["params"] or {}, "data.params", defaults, partial=True)
    checked = {k: _like(defaults[k], v, f"data.params.{k}") for k, v in params.items()}
    return DataConfig(kind, _integer(section["seed"], "data.seed", 0), checked)


def _fit(raw: Any, task: str) -> FitConfig:
    names = [f.name for f in fields(FitConfig)]
    s = {**FIT_DEFAULTS, **_section(raw, "training", names, optional=FIT_DEFAULTS)}
    split = s["validation_split"]
    if split is not None and not 0.0 < _number(split, "training.validation_split") < 1.0:
        raise ConfigError(f"training.validation_split must be between 0 and 1 (exclusive), got {split}.")
    for key in ("early_stopping", "refit"):
        if split is None and s[key] not in (None, False):
            raise ConfigError(f"training.{key} needs a validation split; set training.validation_split.")
    return FitConfig(
        optimizer=_choice(s["optimizer"], "training.optimizer", OPTIMIZERS),
        learning_rate=_positive(s["learning_rate"], "training.learning_rate"),
        schedule=_choice(s["schedule"], "training.schedule", SCHEDULES),
        loss=_choice(s["loss"], "training.loss", LOSSES[task], f" for a {task} model"),
        epochs=_integer(s["epochs"], "training.epochs", 1),
        batch_size=_integer(s["batch_size"], "training.batch_size", 1),
        validation_split=None if split is None else float(split),
        seed=_integer(s["seed"], "training.seed", 0),
        early_stopping=_early_stopping(s["early_stopping"], task),
        refit=_flag(s["refit"], "training.refit"),
    )


def _early_stopping(raw: Any, task: str) -> EarlyStopping | None:
    if raw is None:
        return None
    s = _section(raw, "training.early_stopping", [f.name for f in fields(EarlyStopping)])
    return EarlyStopping(
        monitor=_choice(
            s["monitor"], "training.early_stopping.monitor", MONITORS[task], f" for a {task} model"
        ),
        patience=_integer(s["patience"], "training.early_stopping.patience", 1),
    )


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}.")
    return value


def _section(
    raw: Any, where: str, keys: Iterable[str], partial: bool = False, optional: Collection[str] = ()
) -> dict[str, Any]:
    label = where or "The config"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label} must be a mapping of keys to values, got {raw!r}.")
    known, prefix = list(keys), f"{where}." if where else ""
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise ConfigError(f"Unknown config key {prefix}{unknown[0]} (known: {', '.join(known)}).")
    missing = [] if partial else [k for k in known if k not in raw and k not in optional]
    if missing:
        raise ConfigError(f"{label} lacks the key {prefix}{missing[0]}.")
    return dict(raw)


def _choice(value: Any, key: str, options: Iterable[str], context: str = "") -> str:
    options = tuple(options)
    if value not in options:
        raise ConfigError(f"{key} {value!r} is not supported{context}; choose one of: {', '.join(options)}.")
    return str(value)


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}.")
    try:
        return float(value)  # strings too: YAML reads 1e-3 (no dot) as text
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}.") from None


def _positive(value: Any, key: str) -> float:
    number = _number(value, key)
    if not number > 0:
        raise ConfigError(f"{key} must be greater than 0, got {value!r}.")
    return number


def _integer(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}.")
    return value


def _like(default: Any, value: Any, key: str) -> Any:
    """Check a data parameter against its default's type (ints stay ints, floats accept ints)."""
    if isinstance(default, int):
        return _integer(value, key, -(2**31))
    return _number(value, key)
