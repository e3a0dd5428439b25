"""TF Serving's gRPC API: PredictionService (Predict, Classify, Regress, GetModelMetadata) and
ModelService.GetModelStatus, over the same Inference as the REST routes.

A ``model_spec`` names a model and optionally a version or a version label, as a REST URL does;
``signature_name`` empty or the model's own. Predict answers every output the REST ``:predict``
answers (the signature's plus the probability outputs, with the default threshold: PredictRequest
has no field for request parameters), or those ``output_filter`` names, values in
``tensor_content`` (strings in ``string_val``). ModelService's HandleReloadConfigRequest is left
UNIMPLEMENTED: model control is the V2 repository API's job here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.grpc.calls import MODELS, TFS, Door, rpc
from service.grpc.examples_codec import decode_input, fill_classifications, fill_regressions
from service.grpc.generated import (
    classification_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from service.grpc.metadata_codec import tfs_model_metadata, tfs_model_status
from service.grpc.tfserving_codec import decode_inputs, fill_tensor
from service.inference import Inference, ModelRef, check_signature, check_task
from service.metrics import RequestRecord
from service.models.card import ModelCard
from service.models.outputs import OutputOptions, output_names

PREDICT, CLASSIFY, REGRESS = rpc(f"{TFS}/Predict"), rpc(f"{TFS}/Classify"), rpc(f"{TFS}/Regress")
METADATA, STATUS = rpc(f"{TFS}/GetModelMetadata"), rpc(f"{MODELS}/GetModelStatus")
SIGNATURE_DEF = "signature_def"  # the one metadata field TF Serving serves


def model_ref(spec: Any) -> ModelRef:
    """What a ``ModelSpec`` names: its ``version`` or ``version_label`` choice, if any."""
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return ModelRef(spec.name, version, label)


def check_output_filter(names: Sequence[str], available: Sequence[str]) -> list[str]:
    """The outputs to answer: those ``output_filter`` names (each one the model has, once), or all."""
    for name in names:
        if name not in available:
            known = ", ".join(repr(n) for n in available)
            raise InvalidInput(f"Unknown output {name!r} in output_filter; the model's outputs are {known}.")
    if len(set(names)) != len(names):
        raise InvalidInput("output_filter names the same output twice.")
    return list(names) or list(available)


def _fill_spec(response: Any, card: ModelCard, version: int) -> None:
    """The model_spec an answer carries, as TF Serving fills it: the version that answered."""
    response.model_spec.name = card.name
    response.model_spec.version.value = version
    response.model_spec.signature_name = card.signature_name


def predict_response(
    outputs: Mapping[str, np.ndarray], wanted: Sequence[str], card: ModelCard, version: int
) -> Any:
    response = predict_pb2.PredictResponse()
    _fill_spec(response, card, version)
    for name in wanted:
        fill_tensor(response.outputs[name], np.asarray(outputs[name]))
    return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, inference: Inference, door: Door) -> None:
        self.inference = inference
        self.door = door

    async def Predict(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            assert record is not None
            with self.inference.serving(model_ref(request.model_spec), record) as (servable, card):
                inputs = decode_inputs(request.inputs, card.inputs, self.inference.limits)
                check_signature(card, request.model_spec.signature_name)
                options = OutputOptions()
                wanted = check_output_filter(request.output_filter, output_names(card, options))
                outputs = await self.inference.predict_arrays(servable, card, inputs, options, record, budget)
                return predict_response(outputs, wanted, card, servable.version)

        return await self.door.answer(PREDICT, context, request.model_spec.name, work)

    async def Classify(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            assert record is not None
            with self.inference.serving(model_ref(request.model_spec), record) as (servable, card):
                check_task(card, "classify")
                inputs = decode_input(request.input, card.inputs, self.inference.limits)
                check_signature(card, request.model_spec.signature_name)
                scores, labels = await self.inference.classify_scores(servable, card, inputs, record, budget)
                response = classification_pb2.ClassificationResponse()
                _fill_spec(response, card, servable.version)
                fill_classifications(response.result, scores, labels)
                return response

        return await self.door.answer(CLASSIFY, context, request.model_spec.name, work)

    async def Regress(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            assert record is not None
            with self.inference.serving(model_ref(request.model_spec), record) as (servable, card):
                check_task(card, "regress")
                inputs = decode_input(request.input, card.inputs, self.inference.limits)
                check_signature(card, request.model_spec.signature_name)
                values = await self.inference.regress_values(servable, card, inputs, record, budget)
                response = regression_pb2.RegressionResponse()
                _fill_spec(response, card, servable.version)
                fill_regressions(response.result, values)
                return response

        return await self.door.answer(REGRESS, context, request.model_spec.name, work)

    async def GetModelMetadata(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            assert record is not None
            fields = list(request.metadata_field)
            if fields != [SIGNATURE_DEF]:
                raise InvalidInput(
                    f"GetModelMetadata serves metadata_field {[SIGNATURE_DEF]}; the request asks for {fields}."
                )
            return tfs_model_metadata(self.inference.tfs_metadata(model_ref(request.model_spec), record))

        return await self.door.answer(METADATA, context, request.model_spec.name, work)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, inference: Inference, door: Door) -> None:
        self.inference = inference
        self.door = door

    async def GetModelStatus(self, request: Any, context: Any) -> Any:
        async def work(record: RequestRecord | None, budget: float | None) -> Any:
            return tfs_model_status(self.inference.tfs_status(model_ref(request.model_spec)))

        return await self.door.answer(STATUS, context, request.model_spec.name, work)
