"""The data plane: resolve the model version, decode and validate, run, add probability outputs, encode.

Protocol-neutral orchestration, no HTTP framework. A model-running request is plain decode -> run
-> encode on the event loop: decoding and encoding happen on the loop's thread, the model call is
awaited (the micro-batcher runs it on its own thread, merged with other requests). Each call fills
the request's :class:`~service.metrics.RequestRecord` with the resolved version and the instance
count, whatever the outcome. The read-only documents (status, metadata, readiness, index) for
both dialects are here too, so a front door never touches the registry itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.batching.arrays import row_count
from service.errors import BatchTimeout, CardError, DeadlineExceeded, InvalidInput, NotFound, Unavailable
from service.metrics import RequestRecord
from service.models.card import ModelCard
from service.models.outputs import (
    PROBABILITIES,
    PROBABILITY,
    OutputOptions,
    derive,
    derived_specs,
    output_names,
    parse_options,
)
from service.models.registry import Registry
from service.models.repository import ASSETS_EXTRA_DIR, CURVES_FILE
from service.models.servable import AVAILABLE, Arrays, Servable, VersionStatus
from service.protocol.tensors import Limits, check_tensor_bytes, tensor_bytes
from service.protocol.tfserving.documents import model_metadata as tfs_model_metadata
from service.protocol.tfserving.documents import model_status
from service.protocol.tfserving.examples import decode_examples, encode_classify, encode_regress
from service.protocol.tfserving.predict import decode_predict, encode_predict
from service.protocol.v2.request import decode_infer
from service.protocol.v2.response import PLATFORM, check_requested_outputs, encode_infer
from service.protocol.v2.response import model_metadata as v2_model_metadata

Answer = tuple[bytes, dict[str, str]]  # body, extra headers (Content-Type when not JSON)
JSON_HEADERS: dict[str, str] = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class ModelRef:
    """What a URL names: a model and optionally a version or a label (TF Serving's model_spec)."""

    name: str
    version: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class Observation:
    """What a request to a watched model leaves for :mod:`service.quality` once it is answered."""

    card: ModelCard
    version: int
    inputs: Arrays
    outputs: Arrays  # the signature's own outputs, before probability outputs are derived


Handler = Callable[["Inference", Servable, ModelCard, bytes, "int | None", RequestRecord], Awaitable[Answer]]


class Inference:
    def __init__(self, registry: Registry, limits: Limits, request_timeout: float) -> None:
        self.registry = registry
        self.limits = limits
        self.timeout = request_timeout
        # Models whose answered requests service.quality keeps (feedback, drift, shadow); it
        # replaces this set when the serving config changes. Empty: nothing is kept.
        self.watched: Container[str] = frozenset()

    async def run(
        self, endpoint: str, ref: ModelRef, body: bytes, header_length: int | None, record: RequestRecord
    ) -> Answer:
        """Answer a model-running request (``endpoint``: a key of HANDLERS) on the event loop."""
        with self.serving(ref, record) as (servable, card):
            answer = await HANDLERS[endpoint](self, servable, card, body, header_length, record)
            record.encoded = time.monotonic()
            return answer

    @contextmanager
    def serving(self, ref: ModelRef, record: RequestRecord) -> Iterator[tuple[Servable, ModelCard]]:
        """The version ``ref`` resolves to, held (in flight) until the block ends."""
        with self.registry.acquire(ref.name, ref.version, ref.label) as servable:
            record.model, record.version = ref.name, str(servable.version)
            record.resolved = time.monotonic()
            assert servable.card is not None  # AVAILABLE servables always carry their card
            yield servable, servable.card

    async def _predict(
        self, servable: Servable, inputs: Arrays, record: RequestRecord, budget: float | None = None
    ) -> Arrays:
        record.instances = row_count(inputs)
        check_tensor_bytes(tensor_bytes(inputs), self.limits)
        record.decoded = time.monotonic()
        outputs = await self._batched(servable, inputs, record, budget)
        record.predicted = time.monotonic()
        if servable.name in self.watched:
            assert servable.card is not None
            record.observed = Observation(servable.card, servable.version, inputs, outputs)
        return outputs

    async def _batched(
        self, servable: Servable, inputs: Arrays, record: RequestRecord, budget: float | None
    ) -> Arrays:
        """The batcher's answer within REQUEST_TIMEOUT, or within ``budget`` when that is sooner."""
        if budget is None or budget >= self.timeout:
            return await servable.predict_async(inputs, timeout=self.timeout, timing=record)
        try:
            return await servable.predict_async(inputs, timeout=budget, timing=record)
        except BatchTimeout as exc:  # a full queue or a shutdown stays Unavailable
            raise DeadlineExceeded(
                f"The deadline passed before model {servable.name!r} version {servable.version} ran the request."
            ) from exc

    # ---- protocol-neutral steps on decoded arrays: the HTTP handlers below and the gRPC servicers --
    # ``budget`` is how long the caller can still wait (a gRPC deadline); it caps REQUEST_TIMEOUT.
    async def predict_arrays(
        self,
        servable: Servable,
        card: ModelCard,
        inputs: Arrays,
        options: OutputOptions,
        record: RequestRecord,
        budget: float | None = None,
    ) -> Arrays:
        """The signature's outputs for ``inputs`` plus the probability outputs ``options`` call for."""
        return derive(await self._predict(servable, inputs, record, budget), card, options)

    async def classify_scores(
        self,
        servable: Servable,
        card: ModelCard,
        inputs: Arrays,
        record: RequestRecord,
        budget: float | None = None,
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """[examples, classes] scores and the class labels, as :classify answers (binary: 1 - p, p)."""
        outputs = await self._predict(servable, inputs, record, budget)
        if card.task == "binary":
            p = outputs[PROBABILITY].reshape(-1, 1)
            return np.hstack([1.0 - p, p]), card.class_labels or ("0", "1")
        return outputs[PROBABILITIES], card.class_labels or ()

    async def regress_values(
        self,
        servable: Servable,
        card: ModelCard,
        inputs: Arrays,
        record: RequestRecord,
        budget: float | None = None,
    ) -> np.ndarray:
        """One predicted value per example, as :regress answers."""
        outputs = await self._predict(servable, inputs, record, budget)
        return outputs[card.outputs[0].name].reshape(-1)

    # ---- TF Serving REST --------------------------------------------------------------------
    async def tfs_predict(
        self, servable: Servable, card: ModelCard, body: bytes, _: int | None, record: RequestRecord
    ) -> Answer:
        request = decode_predict(body, card.inputs, self.limits)
        check_signature(card, request.signature_name)
        options = parse_options(request.parameters, card)
        outputs = await self.predict_arrays(servable, card, request.inputs, options, record)
        return encode_predict(outputs, request.columnar), JSON_HEADERS

    async def tfs_classify(
        self, servable: Servable, card: ModelCard, body: bytes, _: int | None, record: RequestRecord
    ) -> Answer:
        check_task(card, "classify")
        inputs, signature_name, _parameters = decode_examples(body, card.inputs, self.limits)
        check_signature(card, signature_name)
        scores, labels = await self.classify_scores(servable, card, inputs, record)
        return encode_classify(scores, labels), JSON_HEADERS

    async def tfs_regress(
        self, servable: Servable, card: ModelCard, body: bytes, _: int | None, record: RequestRecord
    ) -> Answer:
        check_task(card, "regress")
        inputs, signature_name, _parameters = decode_examples(body, card.inputs, self.limits)
        check_signature(card, signature_name)
        return encode_regress(await self.regress_values(servable, card, inputs, record)), JSON_HEADERS

    def tfs_status(self, ref: ModelRef) -> dict[str, Any]:
        return model_status(self.registry.status(ref.name, ref.version, ref.label))

    def tfs_metadata(self, ref: ModelRef, record: RequestRecord) -> dict[str, Any]:
        with self.serving(ref, record) as (servable, card):
            return tfs_model_metadata(
                card.name, servable.version, card.signature_name, card.inputs, card.outputs
            )

    # ---- Open Inference Protocol (V2) -------------------------------------------------------
    async def v2_infer(
        self,
        servable: Servable,
        card: ModelCard,
        body: bytes,
        header_length: int | None,
        record: RequestRecord,
    ) -> Answer:
        request = decode_infer(body, header_length, card.inputs, self.limits)
        options = parse_options(request.parameters, card)
        check_requested_outputs(request, output_names(card, options))
        outputs = await self.predict_arrays(servable, card, request.inputs, options, record)
        return encode_infer(
            card.name, str(card.version), outputs, request, card.class_labels, classification_source(card)
        )

    def v2_metadata(self, ref: ModelRef, record: RequestRecord) -> dict[str, Any]:
        with self.serving(ref, record) as (servable, card):
            versions = [str(s.version) for s in self.registry.status(ref.name) if s.state == AVAILABLE]
            if ref.version is not None:
                versions = [str(servable.version)]
            outputs = [*card.outputs, *derived_specs(card)]
            return v2_model_metadata(card.name, versions, PLATFORM, card.inputs, outputs)

    def v2_ready(self, ref: ModelRef) -> bool:
        """True if the named version (or any version) is AVAILABLE; NotFound for unknown ones."""
        return any(s.state == AVAILABLE for s in self.registry.status(ref.name, ref.version))

    def model_index(self) -> list[dict[str, Any]]:
        """Every model and version the registry knows of, with state and reason (Triton's index)."""
        index = []
        for name in self.registry.model_names():
            try:
                statuses = self.registry.status(name)
            except NotFound:  # retired between the two calls
                continue
            index += [
                {"name": name, "version": str(s.version), "state": s.state, "reason": s.error or ""}
                for s in statuses
            ]
        return index

    # ---- model cards (read-only; the console shows them) -------------------------------------
    def card_document(self, ref: ModelRef) -> dict[str, Any]:
        """A version's card with its state, error, serving labels and the address of its curve image."""
        status = self._card_status(ref)
        name, version = ref.name, status.version
        card = self._served_card(name, version) or self._stored_card(name, version)
        curves = self._curves_file(name, version).is_file()
        return {
            "name": name,
            "version": str(version),
            "state": status.state,
            "error": status.error or "",
            "labels": sorted(label for label, v in self.registry.labels(name).items() if v == version),
            "training_curves": f"/v1/models/{name}/versions/{version}/card/{CURVES_FILE}" if curves else None,
            "card": card.to_dict(),
        }

    def training_curves(self, ref: ModelRef) -> Path:
        """The version's training-curve image written by training; NotFound when it has none."""
        version = self._card_status(ref).version
        path = self._curves_file(ref.name, version)
        if not path.is_file():
            raise NotFound(f"Model {ref.name!r} version {version} has no training-curve image.")
        return path

    def _card_status(self, ref: ModelRef) -> VersionStatus:
        """The named version in any state (END included: its card says what failed to load), or
        without a version the one :predict would use."""
        statuses = self.registry.status(ref.name, ref.version, ref.label)
        if ref.version is not None or ref.label is not None:
            return statuses[0]
        for status in statuses:  # newest first
            if status.state == AVAILABLE:
                return status
        raise Unavailable(f"Model {ref.name!r} has no version available yet; name a version to see its card.")

    def _served_card(self, name: str, version: int) -> ModelCard | None:
        try:
            with self.registry.acquire(name, version) as servable:
                return servable.card
        except Unavailable:  # loading or failed: there is no card in memory
            return None

    def _stored_card(self, name: str, version: int) -> ModelCard:
        try:
            return self.registry.repository.read_card(name, version)
        except CardError as exc:  # its message names a server path, which is no client's business
            raise NotFound(f"Model {name!r} version {version} has no readable model card.") from exc

    def _curves_file(self, name: str, version: int) -> Path:
        return self.registry.repository.version_dir(name, version) / ASSETS_EXTRA_DIR / CURVES_FILE


def check_signature(card: ModelCard, requested: str | None) -> None:
    """Refuse a signature name other than the model's one serving signature (empty: that one)."""
    if requested not in (None, "", card.signature_name):
        raise InvalidInput(
            f"Serving signature {requested!r} not found; model {card.name!r} has {card.signature_name!r}."
        )


def check_task(card: ModelCard, verb: str) -> None:
    """Refuse :classify of a regressor and :regress of a classifier (``verb``: classify or regress)."""
    if verb == "classify" and card.task not in ("classification", "binary"):
        raise InvalidInput(f"Model {card.name!r} is a {card.task} model; use :regress or :predict.")
    if verb == "regress" and (card.task != "regression" or len(card.outputs) != 1):
        raise InvalidInput(f"Model {card.name!r} is a {card.task} model; use :classify or :predict.")


def classification_source(card: ModelCard) -> str | None:
    """The output whose classes ``card.class_labels`` name (V2's classification extension labels it)."""
    return PROBABILITIES if card.task == "classification" else None


HANDLERS: dict[str, Handler] = {
    "tfs_predict": Inference.tfs_predict,
    "tfs_classify": Inference.tfs_classify,
    "tfs_regress": Inference.tfs_regress,
    "v2_infer": Inference.v2_infer,
}
