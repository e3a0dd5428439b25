"""The model card's contract: a version's task, signature tensors and class labels, as JSON.

Training writes a card beside every SavedModel it exports and the service reads it back, so the two
agree on what a version takes and returns. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.errors import CardError

CARD_SCHEMA_VERSION = 1

# "raw": a SavedModel served from its signature alone: outputs as they are, no probability extras.
TASKS = ("classification", "binary", "regression", "raw")
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool", "string")


@dataclass(frozen=True)
class TensorSpec:
    """One named signature tensor; ``-1`` in ``shape`` means any size (the batch dimension)."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TensorSpec:
        try:
            spec = cls(str(raw["name"]), str(raw["dtype"]), tuple(int(d) for d in raw["shape"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CardError(f"Tensor spec {dict(raw)!r} needs a name, a dtype and an integer shape.") from exc
        if spec.dtype not in DTYPES:
            raise CardError(f"Tensor {spec.name!r} has unsupported dtype {spec.dtype!r}.")
        return spec


@dataclass(frozen=True)
class ModelCard:
    """The parts of a model card the service relies on; ``raw`` keeps the whole document."""

    name: str
    version: int
    task: str
    signature_name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    class_labels: tuple[str, ...] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def metrics(self) -> Mapping[str, Any]:
        return self.raw.get("metrics", {})

    def to_dict(self) -> dict[str, Any]:
        doc = dict(self.raw)
        doc.update(
            schema_version=CARD_SCHEMA_VERSION,
            name=self.name,
            version=self.version,
            task=self.task,
            signature_name=self.signature_name,
            inputs=[s.to_dict() for s in self.inputs],
            outputs=[s.to_dict() for s in self.outputs],
            class_labels=list(self.class_labels) if self.class_labels is not None else None,
        )
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ModelCard:
        missing = [k for k in ("name", "version", "task", "inputs", "outputs") if k not in doc]
        if missing:
            raise CardError(f"Model card lacks required field(s): {', '.join(missing)}.")
        if doc["task"] not in TASKS:
            raise CardError(f"Model card task {doc['task']!r} is not one of {', '.join(TASKS)}.")
        if not isinstance(doc["inputs"], list) or not isinstance(doc["outputs"], list):
            raise CardError("Model card 'inputs' and 'outputs' must be lists of tensor specs.")
        labels = doc.get("class_labels")
        if labels is not None and not isinstance(labels, list):
            raise CardError("Model card 'class_labels' must be a list or null.")
        try:
            version = int(doc["version"])
        except (TypeError, ValueError) as exc:
            raise CardError(f"Model card version {doc['version']!r} is not an integer.") from exc
        return cls(
            name=str(doc["name"]),
            version=version,
            task=str(doc["task"]),
            signature_name=str(doc.get("signature_name", "serving_default")),
            inputs=tuple(TensorSpec.from_dict(s) for s in doc["inputs"]),
            outputs=tuple(TensorSpec.from_dict(s) for s in doc["outputs"]),
            class_labels=tuple(str(x) for x in labels) if labels is not None else None,
            raw=dict(doc),
        )
