"""The data plane: resolve the model version, decode and validate, run, add probability outputs, encode.

Protocol-neutral orchestration; no Flask. Each call fills a :class:`Trace` so the HTTP layer can
record the resolved version and instance count in its metrics, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service import postprocess
from service.errors import CardError, InvalidInput, NotFound, Unavailable
from service.protocol import tfserving, v2
from service.protocol.common import Limits, VersionStatus
from service.registry import Registry
from service.repository import ASSETS_EXTRA_DIR, CURVES_FILE, ModelCard
from service.servable import AVAILABLE, Arrays, Servable

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


# A model-running request as three steps: decode and validate (up to the yield, which hands over the
# model inputs), run the model (the driver's job: blocking in a Flask thread, awaited on the event
# loop), then derive and encode (after the yield). One implementation serves both front ends.
Steps = Generator[Arrays, Arrays, "Answer"]
Answer = tuple[bytes, dict[str, str]]  # body, extra headers (Content-Type when not JSON)
JSON_HEADERS: dict[str, str] = {"Content-Type": "application/json"}


class Inference:
    def __init__(self, registry: Registry, limits: Limits, request_timeout: float) -> None:
        self.registry = registry
        self.limits = limits
        self.timeout = request_timeout

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

    @contextmanager
    def _serving(self, ref: ModelRef, trace: Trace) -> Iterator[tuple[Servable, ModelCard]]:
        """The version ``ref`` resolves to, held (in flight) until the block ends."""
        with self.registry.acquire(ref.name, ref.version, ref.label) as servable:
            # Only names the registry knows become metric labels: random 404s must not add series.
            trace.model, trace.version = ref.name, str(servable.version)
            yield servable, self._card(servable)

    # ---- running a model: one set of steps, two drivers ---------------------------------------
    def answer(
        self, kind: str, ref: ModelRef, body: bytes, header_length: int | None, trace: Trace
    ) -> Answer:
        """Run a model-running request (``kind``: a key of HANDLERS) on the calling thread."""
        with self._serving(ref, trace) as (servable, card):
            steps, inputs = self._begin(kind, card, body, header_length, trace)
            return _finish(steps, servable.predict(inputs, timeout=self.timeout))

    async def answer_async(
        self, kind: str, ref: ModelRef, body: bytes, header_length: int | None, trace: Trace
    ) -> Answer:
        """:meth:`answer` for the event loop: decoding and encoding run here, the model call is awaited."""
        with self._serving(ref, trace) as (servable, card):
            steps, inputs = self._begin(kind, card, body, header_length, trace)
            return _finish(steps, await servable.predict_async(inputs, timeout=self.timeout))

    def _begin(
        self, kind: str, card: ModelCard, body: bytes, header_length: int | None, trace: Trace
    ) -> tuple[Steps, Arrays]:
        """Start the handler's steps: decode and validate, up to the model inputs."""
        steps = HANDLERS[kind](self, card, body, header_length)
        inputs = next(steps)
        trace.instances = len(next(iter(inputs.values())))
        return steps, inputs

    # ---- TF Serving REST --------------------------------------------------------------------
    def _tfs_predict(self, card: ModelCard, body: bytes, header_length: int | None) -> Steps:
        request = tfserving.decode_predict(body, card.inputs, self.limits)
        self._check_signature(card, request.signature_name)
        options = postprocess.parse_options(request.parameters, card)
        outputs = yield request.inputs
        return tfserving.encode_predict(
            postprocess.derive(outputs, card, options), request.columnar
        ), JSON_HEADERS

    def _tfs_classify(self, card: ModelCard, body: bytes, header_length: int | None) -> Steps:
        if card.task not in ("classification", "binary"):
            raise InvalidInput(f"Model {card.name!r} is a {card.task} model; use :regress or :predict.")
        inputs, signature_name, _ = tfserving.decode_examples(body, card.inputs, self.limits)
        self._check_signature(card, signature_name)
        outputs = yield inputs
        if card.task == "binary":
            p = outputs[postprocess.PROBABILITY].reshape(-1, 1)
            scores = np.hstack([1.0 - p, p])
            return tfserving.encode_classify(scores, card.class_labels or ("0", "1")), JSON_HEADERS
        return tfserving.encode_classify(
            outputs[postprocess.PROBABILITIES], card.class_labels or ()
        ), JSON_HEADERS

    def _tfs_regress(self, card: ModelCard, body: bytes, header_length: int | None) -> Steps:
        if card.task != "regression" or len(card.outputs) != 1:
            raise InvalidInput(f"Model {card.name!r} is a {card.task} model; use :classify or :predict.")
        inputs, signature_name, _ = tfserving.decode_examples(body, card.inputs, self.limits)
        self._check_signature(card, signature_name)
        outputs = yield inputs
        return tfserving.encode_regress(outputs[card.outputs[0].name].reshape(-1)), JSON_HEADERS

    def tfs_status(self, ref: ModelRef) -> dict[str, Any]:
        return tfserving.model_status(self.registry.status(ref.name, ref.version, ref.label))

    def tfs_metadata(self, ref: ModelRef, trace: Trace) -> dict[str, Any]:
        with self._serving(ref, trace) as (servable, card):
            return tfserving.model_metadata(
                card.name, servable.version, card.signature_name, card.inputs, card.outputs
            )

    # ---- Open Inference Protocol (V2) -------------------------------------------------------
    def _v2_infer(self, card: ModelCard, body: bytes, header_length: int | None) -> Steps:
        request = v2.decode_infer(body, header_length, card.inputs, self.limits)
        options = postprocess.parse_options(request.parameters, card)
        v2.check_requested_outputs(request, postprocess.output_names(card, options))
        outputs = postprocess.derive((yield request.inputs), card, options)
        source = postprocess.PROBABILITIES if card.task == "classification" else None
        version = str(card.version)
        return v2.encode_infer(card.name, version, outputs, request, card.class_labels, source)

    def v2_metadata(self, ref: ModelRef, trace: Trace) -> dict[str, Any]:
        with self._serving(ref, trace) as (servable, card):
            versions = [str(s.version) for s in self.registry.status(ref.name) if s.state == AVAILABLE]
            if ref.version is not None:
                versions = [str(servable.version)]
            outputs = [*card.outputs, *postprocess.derived_specs(card)]
            return v2.model_metadata(card.name, versions, PLATFORM, card.inputs, outputs)

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

    # ---- model cards (read-only; the console shows them) -------------------------------------
    def card_document(self, ref: ModelRef) -> dict[str, Any]:
        """A version's card with its state, error, serving labels and the path of its curve image."""
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


def _finish(steps: Steps, outputs: Arrays) -> Answer:
    try:
        steps.send(outputs)
    except StopIteration as done:
        return done.value
    raise RuntimeError("An inference handler asked for the model twice.")


HANDLERS: dict[str, Callable[[Inference, ModelCard, bytes, int | None], Steps]] = {
    "tfs_predict": Inference._tfs_predict,
    "tfs_classify": Inference._tfs_classify,
    "tfs_regress": Inference._tfs_regress,
    "v2_infer": Inference._v2_infer,
}
