"""JSON Schemas of the bodies the routes take and answer, for the OpenAPI description.

Written against what the decoders accept and the encoders write (service/protocol, evaluation);
a fuzzer driven by the document (tests/e2e/test_openapi_fuzz.py) checks every answer against them.
Examples are real answers of the committed models, as the README shows them.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

ANY: Schema = {}
STRING: Schema = {"type": "string"}
NUMBER: Schema = {"type": "number"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STATE = {"type": "string", "enum": ["UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END"]}
PARAMETERS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
DATATYPE = {
    "type": "string",
    "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES"],
}  # fmt: skip
V2_TENSOR_SPEC = obj({"name": STRING, "datatype": DATATYPE, "shape": array({"type": "integer"})})

COMPONENTS: dict[str, Schema] = {
    "Error": obj({"error": STRING}, ("error",), additionalProperties=False),
    "TfsPredictRequest": obj(
        {
            "instances": {"type": "array", "description": "row format: one item per instance"},
            "inputs": {"description": "columnar format: a tensor, or an object of tensors by input name"},
            "signature_name": STRING,
            "parameters": PARAMETERS,
            "top_k": {"type": "integer", "minimum": 1},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1},
        },
        example={"instances": [1.0, 2.0]},
    ),
    "TfsPredictResponse": {
        "anyOf": [
            obj({"predictions": {"type": "array"}}, ("predictions",)),
            obj({"outputs": ANY}, ("outputs",)),
        ],
        "example": {"predictions": [1.0042622, 3.002233]},
    },
    "TfsExamplesRequest": obj(
        {
            "examples": array({"type": "object"}),
            "context": {"type": "object"},
            "signature_name": STRING,
            "parameters": PARAMETERS,
        },
        ("examples",),
        example={"examples": [{"x": 10.0}]},
    ),
    "TfsClassifyResponse": obj(
        {"results": array(array({"type": "array", "prefixItems": [STRING, NUMBER]}))}, ("results",)
    ),
    "TfsRegressResponse": obj({"results": array(NUMBER)}, ("results",), example={"results": [18.986]}),
    "TfsModelStatus": obj(
        {
            "model_version_status": array(
                obj(
                    {
                        "version": STRING,
                        "state": STATE,
                        "status": obj({"error_code": STRING, "error_message": STRING}),
                        "gate": {"type": "object", "description": "a gated model's rollout verdict"},
                    },
                    ("version", "state", "status"),
                )
            )
        },
        ("model_version_status",),
    ),
    "TfsModelMetadata": obj(
        {"model_spec": {"type": "object"}, "metadata": {"type": "object"}}, ("model_spec", "metadata")
    ),
    "V2InferRequest": obj(
        {
            "id": STRING,
            "parameters": PARAMETERS,
            "inputs": array(
                obj(
                    {
                        "name": STRING,
                        "shape": array({"type": "integer", "minimum": 0}),
                        "datatype": DATATYPE,
                        "parameters": PARAMETERS,
                        "data": ANY,
                    },
                    ("name", "shape", "datatype"),
                )
            ),
            "outputs": array(obj({"name": STRING, "parameters": PARAMETERS}, ("name",))),
        },
        ("inputs",),
        example={
            "id": "a1",
            "inputs": [
                {"name": "features", "shape": [2, 2], "datatype": "FP32", "data": [0.2, 0.3, 0.9, 0.8]}
            ],
        },
    ),
    "V2InferResponse": obj(
        {
            "model_name": STRING,
            "model_version": STRING,
            "id": STRING,
            "outputs": array(
                obj(
                    {
                        "name": STRING,
                        "datatype": DATATYPE,
                        "shape": array({"type": "integer"}),
                        "data": {"type": "array"},
                        "parameters": PARAMETERS,
                    },
                    ("name", "datatype", "shape"),
                )
            ),
        },
        ("model_name", "model_version", "outputs"),
    ),
    "V2ServerMetadata": obj(
        {"name": STRING, "version": STRING, "extensions": array(STRING)}, ("name", "version", "extensions")
    ),
    "V2ModelMetadata": obj(
        {
            "name": STRING,
            "versions": array(STRING),
            "platform": STRING,
            "inputs": array(V2_TENSOR_SPEC),
            "outputs": array(V2_TENSOR_SPEC),
        },
        ("name", "versions", "platform", "inputs", "outputs"),
    ),
    "V2ModelReady": obj({"name": STRING, "ready": {"type": "boolean"}, "version": STRING}, ("name", "ready")),
    "ModelIndexEntry": obj(
        {"name": STRING, "version": STRING, "state": STRING, "reason": STRING}, ("name", "version", "state")
    ),
    "Live": obj({"live": {"type": "boolean"}}, ("live",)),
    "Ready": obj({"ready": {"type": "boolean"}, "error": STRING}, ("ready",)),
    "EvaluateRequest": {
        "description": "a :predict (or V2 infer) body plus labels, one per instance, and options",
        "allOf": [
            {"type": "object", "properties": {"labels": {"type": "array"}, "metrics": ANY, "dataset": STRING}}
        ],
        "example": {"instances": [0.0, 1.0, 2.0], "labels": [3.0, 8.1, 12.9], "dataset": "readme"},
    },
    "EvaluateResponse": obj(
        {
            "model": STRING,
            "version": STRING,
            "dataset": STRING,
            "task": STRING,
            "sample_count": {"type": "integer"},
            "duration_seconds": NUMBER,
            "metrics": {"type": "object"},
        },
        ("model", "version", "dataset", "task", "sample_count", "metrics"),
    ),
    "Evaluations": obj({"evaluations": array({"type": "object"})}, ("evaluations",)),
    # ---- quality in production (docs/quality.md)
    "FeedbackRequest": obj(
        {
            "feedback": array(
                obj(
                    {
                        "id": {**STRING, "description": "the X-Request-Id of the answer"},
                        "labels": {**array(ANY), "description": "one label per instance of that request"},
                    },
                    ("id", "labels"),
                    additionalProperties=False,
                )
            )
        },
        ("feedback",),
    ),
    "FeedbackResponse": obj(
        {
            "model": STRING,
            "labelled": {"type": "integer", "description": "instances joined to their label"},
            "requests": {"type": "integer"},
            "unknown": array(STRING),
            "expired": array(STRING),
            "rejected": array(obj({"id": STRING, "error": STRING}, ("id", "error"))),
        },
        ("model", "labelled", "requests", "unknown", "expired", "rejected"),
    ),
    "QualityReport": obj(
        {
            "model": STRING,
            "versions": array(
                obj(
                    {
                        "version": STRING,
                        "task": STRING,
                        "predicted": {"type": "integer"},
                        "quality": obj(
                            {
                                "window": {"type": "integer"},
                                "sample_count": {"type": "integer"},
                                "metrics": {"type": "object"},
                                "error": STRING,
                            },
                            ("window", "sample_count", "metrics"),
                        ),
                        "drift": {"type": "object", "description": "PSI per signal, or why there is none"},
                        "gate": {"type": "object", "description": "the rollout gate's verdict"},
                    },
                    ("version", "task", "predicted", "quality"),
                )
            ),
        },
        ("model", "versions"),
    ),
    "ShadowReport": obj(
        {
            "model": STRING,
            "fraction": NUMBER,
            "pairs": array(
                obj(
                    {
                        "version": STRING,
                        "candidate": STRING,
                        "compared": {"type": "integer"},
                        "agreed": {"type": "integer"},
                        "agreement": {"type": ["number", "null"]},
                        "matrix": {
                            **array(array({"type": "integer"})),
                            "description": "rows: the live version's class; columns: the candidate's",
                        },
                    },
                    ("version", "candidate", "compared", "agreed", "agreement", "matrix"),
                )
            ),
        },
        ("model", "fraction", "pairs"),
    ),
    "LoadRequest": obj(
        {
            "parameters": obj(
                {"config": {"type": "string", "description": "the model's serving.yaml entry as JSON"}}
            )
        }
    ),
    "UnloadRequest": obj({"parameters": obj({"unload_dependents": {"type": "boolean"}})}),
    "ModelCard": obj(
        {
            "name": STRING,
            "version": STRING,
            "state": STATE,
            "error": STRING,
            "labels": array(STRING),
            "training_curves": {"type": ["string", "null"]},
            "card": {"type": "object"},
        },
        ("name", "version", "state", "labels", "card"),
    ),
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}
