"""The data plane: resolve the model version, decode and validate, run, add probability outputs, encode.

Protocol-neutral orchestration; no Flask. Each call fills a :class:`Trace` so the HTTP layer can
record the resolved version and instance count in its metrics, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from service import postprocess
from service.errors import InvalidInput, NotFound
from service.protocol import tfserving, v2
from service.protocol.common import Limits
from service.registry import Registry
from service.repository import ModelCard
from service.servable import AVAILABLE, Servable

PLATFORM = "tensorflow_savedmodel"


@dataclass(frozen=True)
class ModelRef:
    """What a URL names: a model and optionally a version or a label (TF Serving's model_spec)."""

    name: str
    version: int | None = None
    label: str | None = None


@dataclass
class Trace:
    model: str = ""
    version: str = ""
    instances: int = 0


class Inference:
    def __init__(self, registry: Registry, limits: Limits, request_timeout: float) -> None:
        self.registry = registry
        self.limits = limits
        self.timeout = request_timeout

    def _run(self, servable: Servable, inputs: dict[str, np.ndarray], trace: Trace) -> dict[str, np.ndarray]:
        trace.instances = len(next(iter(inputs.values())))
        return servable.predict(inputs, timeout=self.timeout)

    @staticmethod
    def _card(servable: Servable) -> ModelCard:
        assert servable.card is not None  # AVAILABLE servables always carry their card
        return servable.card

    @staticmethod
    def _check_signature(card: ModelCard, requested: str | None) -> None:
        if requested not in (None, "", card.signature_name):
            raise InvalidInput(
                f"Serving signature {requested!r} not found; model {card.name!r} has {card.signature_name!r}."
            )

    def _acquired(self, ref: ModelRef, trace: Trace, work: Callable[[Servable, ModelCard], Any]) -> Any:
        with self.registry.acquire(ref.name, ref.version, ref.label) as servable:
            # Only names the registry knows become metric labels: random 404s must not add series.
            trace.model, trace.version = ref.name, str(servable.version)
            return work(servable, self._card(servable))

    # ---- TF Serving REST --------------------------------------------------------------------
    def tfs_predict(self, ref: ModelRef, body: bytes, trace: Trace) -> bytes:
        def work(servable: Servable, card: ModelCard) -> bytes:
            request = tfserving.decode_predict(body, card.inputs, self.limits)
            self._check_signature(card, request.signature_name)
            options = postprocess.parse_options(request.parameters, card)
            outputs = self._run(servable, request.inputs, trace)
            return tfserving.encode_predict(postprocess.derive(outputs, card, options), request.columnar)

        return self._acquired(ref, trace, work)

    def tfs_classify(self, ref: ModelRef, body: bytes, trace: Trace) -> bytes:
        def work(servable: Servable, card: ModelCard) -> bytes:
            if card.task not in ("classification", "binary"):
                raise InvalidInput(f"Model {card.name!r} is a {card.task} model; use :regress or :predict.")
            inputs, signature_name, _ = tfserving.decode_examples(body, card.inputs, self.limits)
            self._check_signature(card, signature_name)
            outputs = self._run(servable, inputs, trace)
            if card.task == "binary":
                p = outputs[postprocess.PROBABILITY].reshape(-1, 1)
                return tfserving.encode_classify(np.hstack([1.0 - p, p]), card.class_labels or ("0", "1"))
            return tfserving.encode_classify(outputs[postprocess.PROBABILITIES], card.class_labels or ())

        return self._acquired(ref, trace, work)

    def tfs_regress(self, ref: ModelRef, body: bytes, trace: Trace) -> bytes:
        def work(servable: Servable, card: ModelCard) -> bytes:
            if card.task != "regression" or len(card.outputs) != 1:
                raise InvalidInput(f"Model {card.name!r} is a {card.task} model; use :classify or :predict.")
            inputs, signature_name, _ = tfserving.decode_examples(body, card.inputs, self.limits)
            self._check_signature(card, signature_name)
            outputs = self._run(servable, inputs, trace)
            return tfserving.encode_regress(outputs[card.outputs[0].name].reshape(-1))

        return self._acquired(ref, trace, work)

    def tfs_status(self, ref: ModelRef) -> dict[str, Any]:
        return tfserving.model_status(self.registry.status(ref.name, ref.version, ref.label))

    def tfs_metadata(self, ref: ModelRef, trace: Trace) -> dict[str, Any]:
        def work(servable: Servable, card: ModelCard) -> dict[str, Any]:
            return tfserving.model_metadata(
                card.name, servable.version, card.signature_name, card.inputs, card.outputs
            )

        return self._acquired(ref, trace, work)

    # ---- Open Inference Protocol (V2) -------------------------------------------------------
    def v2_infer(
        self, ref: ModelRef, body: bytes, header_length: int | None, trace: Trace
    ) -> tuple[bytes, dict[str, str]]:
        def work(servable: Servable, card: ModelCard) -> tuple[bytes, dict[str, str]]:
            request = v2.decode_infer(body, header_length, card.inputs, self.limits)
            options = postprocess.parse_options(request.parameters, card)
            v2.check_requested_outputs(request, postprocess.output_names(card, options))
            outputs = postprocess.derive(self._run(servable, request.inputs, trace), card, options)
            source = postprocess.PROBABILITIES if card.task == "classification" else None
            return v2.encode_infer(
                card.name, str(servable.version), outputs, request, card.class_labels, source
            )

        return self._acquired(ref, trace, work)

    def v2_metadata(self, ref: ModelRef, trace: Trace) -> dict[str, Any]:
        def work(servable: Servable, card: ModelCard) -> dict[str, Any]:
            versions = [str(s.version) for s in self.registry.status(ref.name) if s.state == AVAILABLE]
            if ref.version is not None:
                versions = [str(servable.version)]
            outputs = [*card.outputs, *postprocess.derived_specs(card)]
            return v2.model_metadata(card.name, versions, PLATFORM, card.inputs, outputs)

        return self._acquired(ref, trace, work)

    def v2_ready(self, ref: ModelRef) -> bool:
        """True if the named version (or any version) is AVAILABLE; NotFound for unknown ones."""
        statuses = self.registry.status(ref.name, ref.version)
        return any(s.state == AVAILABLE for s in statuses)

    def model_index(self) -> list[dict[str, Any]]:
        """Every model and version the registry knows of, with state and reason (Triton's index)."""
        index = []
        for name in self.registry.model_names():
            try:
                statuses = self.registry.status(name)
            except NotFound:  # retired between the two calls
                continue
            for status in statuses:
                entry: Mapping[str, Any] = {
                    "name": name,
                    "version": str(status.version),
                    "state": status.state,
                }
                index.append({**entry, "reason": status.error or ""})
        return index
