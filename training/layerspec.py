"""The layer grammar shared by YAML configs and ``--layers``: ``kind[:arg...]``, e.g. ``dense:128:relu``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from training.errors import ConfigError

ACTIVATIONS = (
    "linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "swish", "softplus", "leaky_relu",
)  # fmt: skip
REQUIRED = object()


@dataclass(frozen=True)
class LayerSpec:
    """One parsed layer: its kind and named arguments (defaults filled in)."""

    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return ":".join([self.kind, *(_format(v) for v in self.args.values())])


def _format(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _number(text: str, cast: Callable[[str], Any]) -> Any:
    try:
        return cast(text)
    except ValueError:
        raise ValueError(f"is not {'an integer' if cast is int else 'a number'}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _non_negative(text: str) -> float:
    value = _number(text, float)
    if not value >= 0:
        raise ValueError("must be 0 or more")
    return value


def _fraction(low_open: bool) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = _number(text, float)
        if not (0.0 < value < 1.0 if low_open else 0.0 <= value < 1.0):
            raise ValueError(f"must be in {'(' if low_open else '['}0, 1)")
        return value

    return convert


def _activation(text: str) -> str:
    if text not in ACTIVATIONS:
        raise ValueError(f"is not a known activation ({', '.join(ACTIVATIONS)})")
    return text


def _dims(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(part) for part in text.split("x"))


# kind -> ((argument, converter, default or REQUIRED), ...): the whole grammar in one table.
KINDS: dict[str, tuple[tuple[str, Callable[[str], Any], Any], ...]] = {
    "flatten": (),
    "reshape": (("shape", _dims, REQUIRED),),
    "dense": (("units", _positive_int, REQUIRED), ("activation", _activation, "linear")),
    "dropout": (("rate", _fraction(low_open=False), REQUIRED),),
    "conv": (
        ("filters", _positive_int, REQUIRED),
        ("kernel", _positive_int, 3),
        ("activation", _activation, "linear"),
    ),
    "maxpool": (("size", _positive_int, 2),),
    "gap": (),
    "batchnorm": (("momentum", _fraction(low_open=True), 0.99),),
    "act": (("activation", _activation, REQUIRED),),
    # Augmentation, active only while training (identity when serving): Keras' layers, and warp (degrees,
    # zoom fraction, shift and elastic pixels in one resampling) from training.augment.
    "rotate": (("factor", _fraction(low_open=True), REQUIRED),),
    "zoom": (("factor", _fraction(low_open=True), REQUIRED),),
    "translate": (("factor", _fraction(low_open=True), REQUIRED),),
    "warp": (
        ("degrees", _non_negative, REQUIRED),
        ("zoom", _fraction(low_open=False), REQUIRED),
        ("shift", _non_negative, REQUIRED),
        ("elastic", _non_negative, REQUIRED),
        ("grid", _positive_int, 4),
    ),
}


def parse_layer(text: str) -> LayerSpec:
    """Parse one ``kind:arg:...`` token, checking the kind, the argument count and each value."""
    kind, *raw = str(text).strip().split(":")
    if kind not in KINDS:
        raise ConfigError(f"Layer {text!r}: unknown kind {kind!r} (known: {', '.join(KINDS)}).")
    grammar = KINDS[kind]
    usage = ":".join([kind, *(name if d is REQUIRED else f"[{name}]" for name, _, d in grammar)])
    required = sum(1 for *_, default in grammar if default is REQUIRED)
    if not required <= len(raw) <= len(grammar):
        raise ConfigError(f"Layer {text!r}: expected {usage}.")
    args = {}
    for (name, convert, default), value in zip(grammar, [*raw, *[None] * len(grammar)], strict=False):
        try:
            args[name] = default if value is None else convert(value)
        except ValueError as exc:
            raise ConfigError(f"Layer {text!r}: {name} {value!r} {exc}.") from exc
    return LayerSpec(kind, args)


def parse_layers(value: str | Sequence[str]) -> tuple[LayerSpec, ...]:
    """Parse a comma-separated spec (CLI) or a list of tokens (YAML)."""
    tokens = value.split(",") if isinstance(value, str) else list(value)
    if not tokens or any(not isinstance(t, str) or not t.strip() for t in tokens):
        raise ConfigError(f"Layer spec {value!r} must be a non-empty list of 'kind:arg' tokens.")
    return tuple(parse_layer(t) for t in tokens)
