"""Model cards for SavedModels exported elsewhere: read from the serving signature alone.

A version without ``assets.extra/model_card.json`` is served as task ``raw`` (its outputs as
they are, no probability extras), or as the task serving.yaml names for the model, whose outputs
must then be what the task reads: ``probabilities`` [N, K] for a classifier, ``probability`` [N]
for a binary model, exactly one output for a regressor.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.errors import ModelLoadError
from service.models.card import DTYPES, ModelCard, TensorSpec
from service.models.outputs import PROBABILITIES, PROBABILITY

RAW = "raw"


def signature_card(
    name: str,
    version: int,
    signature_name: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    task: str | None = None,
    class_labels: tuple[str, ...] | None = None,
) -> ModelCard:
    """The card of a card-less version, from its signature and serving.yaml's task and labels."""
    for kind, specs in (("input", inputs), ("output", outputs)):
        for spec in specs:
            if spec.dtype not in DTYPES:
                raise ModelLoadError(
                    f"Model {name!r} version {version}: {kind} {spec.name!r} has dtype {spec.dtype}, "
                    f"which this server cannot serve (it takes {', '.join(DTYPES)})."
                )
    task = task or RAW
    _check_task(task, outputs, class_labels, f"Model {name!r} version {version}")
    doc = {"description": "derived from the SavedModel's serving signature (no model card)"}
    return ModelCard(name, version, task, signature_name, tuple(inputs), tuple(outputs), class_labels, doc)


def _check_task(task: str, outputs: Sequence[TensorSpec], labels: tuple[str, ...] | None, where: str) -> None:
    by_name = {spec.name: spec for spec in outputs}
    if task == "classification":
        spec = by_name.get(PROBABILITIES)
        if spec is None or len(spec.shape) != 2:
            raise ModelLoadError(f"{where}: a classifier needs an output {PROBABILITIES!r} of shape [N, K].")
        if labels is not None and spec.shape[1] not in (-1, len(labels)):
            raise ModelLoadError(f"{where}: {len(labels)} class labels for {spec.shape[1]} classes.")
    elif task == "binary" and (PROBABILITY not in by_name or len(by_name[PROBABILITY].shape) != 1):
        raise ModelLoadError(f"{where}: a binary model needs an output {PROBABILITY!r} of shape [N].")
    elif task == "regression" and len(outputs) != 1:
        raise ModelLoadError(
            f"{where}: a regressor needs exactly one output; the signature has {len(outputs)}."
        )
