"""The fast reader is sound: whatever it accepts, the slow reader accepts with the same result."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.fastjson import Fallback, FastReader
from service.protocol.jsonio import Reader, SlowReader, decode_fast
from service.protocol.tensors import Limits
from service.protocol.tfserving.predict import decode_predict, read_predict
from service.protocol.v2.request import read_infer

IMAGES = [TensorSpec("images", "float32", (-1, 2, 3))]
MULTI = [
    TensorSpec("a", "int64", (-1, 2)),
    TensorSpec("b", "float64", (-1,)),
    TensorSpec("t", "string", (-1,)),
]
LIMITS = Limits(max_instances=16)
IMG = [[[1, 2, 3], [4, 5, 6.5]], [[7, 8, 9], [10, 11, 12]]]


def _predict(specs: list[TensorSpec]) -> Callable[[Reader], Any]:
    return lambda r: read_predict(r, specs, LIMITS)


def _infer(specs: list[TensorSpec]) -> Callable[[Reader], Any]:
    return lambda r: read_infer(r, None, specs, LIMITS)


def _fast(body: bytes, decode: Callable[[Reader], Any]) -> Any:
    try:
        return decode_fast(body, decode)
    except (Fallback, InvalidInput):  # decode_json treats both as "ask the slow reader"
        return Fallback


def _slow(body: bytes, decode: Callable[[Reader], Any]) -> Any:
    try:
        return decode(SlowReader(body))
    except InvalidInput:
        return InvalidInput


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, np.ndarray):
        return (
            isinstance(right, np.ndarray)
            and left.dtype == right.dtype
            and left.shape == right.shape
            and left.tolist() == right.tolist()
        )
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(_same(left[k], right[k]) for k in left)
        )
    if hasattr(left, "__dataclass_fields__"):
        return type(left) is type(right) and _same(vars(left), vars(right))
    return bool(left == right)


def _assert_sound(body: bytes, decode: Callable[[Reader], Any]) -> Any:
    fast = _fast(body, decode)
    if fast is not Fallback:
        slow = _slow(body, decode)
        assert slow is not InvalidInput, f"fast path accepted what the slow path refuses: {body[:200]!r}"
        assert _same(fast, slow), f"fast and slow paths disagree on {body[:200]!r}"
    return fast


def _v2(data: Any, shape: list[int], datatype: str = "FP32", name: str = "images") -> bytes:
    return orjson.dumps({"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]})


# Valid bodies the fast path must take (not just tolerate).
FAST_CASES = [
    (orjson.dumps({"instances": IMG}), _predict(IMAGES)),
    (orjson.dumps({"inputs": {"images": IMG}, "signature_name": "s"}), _predict(IMAGES)),
    (orjson.dumps({"instances": [{"images": IMG[0]}, {"images": IMG[1]}], "top_k": 2}), _predict(IMAGES)),
    (
        orjson.dumps({"instances": [{"a": [1, 2], "b": 0.5, "t": "x"}, {"a": [3, -4], "b": 2, "t": "y"}]}),
        _predict(MULTI),
    ),
    (orjson.dumps({"inputs": {"a": [[1, 2]], "b": [1e-3], "t": ["x"]}}), _predict(MULTI)),
    (_v2(np.array(IMG).reshape(-1).tolist(), [2, 2, 3]), _infer(IMAGES)),
    (_v2(IMG, [2, 2, 3]), _infer(IMAGES)),
    (_v2(np.array(IMG).reshape(-1).tolist(), [2, 2, 3], "FP64"), _infer(IMAGES)),
    (_v2(list(range(12)), [2, 2, 3], "INT32"), _infer(IMAGES)),
]


@pytest.mark.parametrize(("body", "decode"), FAST_CASES)
def test_valid_bodies_take_the_fast_path_and_agree_with_the_slow_one(
    body: bytes, decode: Callable[[Reader], Any]
) -> None:
    assert _assert_sound(body, decode) is not Fallback


# Malformed or unusual bodies: each may fall back, but may never be accepted differently.
EDGE_CASES = [
    b'{"instances": [[[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [[4], 5, 6]]]}',  # a hidden list, same count
    b'{"instances": [[[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [[4, 5], [], 6]]]}',  # hidden lists, same count
    b'{"instances": [[[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 5]]]}',  # ragged
    b'{"instances": [[[1, 2, 3], [4, 5, 6]], [[1, 2, 3, 4, 5, 6]]]}',  # wrong shape, same count
    b'{"instances": [[[1, 2, 3], [4, 5, 6]]], "signature_name": "a[b"}',  # a bracket in a string
    b'{"instances": [[[1, 2, 3], [4, 5, "6"]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, true]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, null]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, {}]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, NaN]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, 1e400]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, 1e39]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, 16777217]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, 16777217.0]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, 18446744073709551616]]]}',
    b'{"instances": [[[1, 2, 3], [4, 5, 6]]], "instances": [[[0, 0, 0], [0, 0, 0]]]}',  # duplicate key
    b'{"instances": [[[1, 2, 3], [4, 5, 6]]], "top_k": 1, "top_k": 2}',  # duplicate scalars
    b'{"instances": [[[1, 2, 3], [4, 5, 6]]], "signature_name": "a", "signature_name": "b"}',
    b'\xef\xbb\xbf{"instances": [[[1, 2, 3], [4, 5, 6]]]}',  # byte order mark
    b'{"instances": [[[1, 2, 3], [4, 5, 6]]], "signature_name": "\\u0041"}',  # an escape
    b'{"instances": [[[1, 2, 3], [4, 5, 6]]], "signature_name": "\\ud800"}',
    b'{"instances": [[[1, 2, 3], [4, 5, 6]]]} x',
    b'{"instances": []}',
    b'{"instances": [[]]}',
    b'{"inputs": [[[1, 2, 3], [4, 5, 6]]], "parameters": {"a": [1]}}',
    b'{"instances": [{"images": [[1, 2, 3], [4, 5, 6]]}, {"images": [[1, 2, 3], [4, 5]]}]}',
    b'{"instances": [{"images": [[1, 2, 3], [4, 5, 6]]}, {"images": [[1, 2, 3], [[4], 5, 6]]}]}',
]


@pytest.mark.parametrize("body", EDGE_CASES)
def test_edge_cases_never_make_the_paths_disagree(body: bytes) -> None:
    _assert_sound(body, _predict(IMAGES))


INT_EDGE_CASES = [
    b'{"instances": [{"a": [1, 2.0], "b": 1, "t": "x"}]}',
    b'{"instances": [{"a": [1, 9223372036854775808], "b": 1, "t": "x"}]}',
    b'{"instances": [{"a": [1, -9223372036854775808], "b": 9007199254740993, "t": "x"}]}',
    b'{"instances": [{"a": [1, 2], "b": 1, "t": {"b64": "AA=="}}]}',
    b'{"instances": [{"a": [1, 2], "b": 1, "t": "x"}, {"a": [1, 2], "b": 1}]}',
]


@pytest.mark.parametrize("body", INT_EDGE_CASES)
def test_integer_and_mixed_edge_cases(body: bytes) -> None:
    _assert_sound(body, _predict(MULTI))


@pytest.mark.parametrize(
    "body",
    [
        _v2([1, 2, 3, 4, 5, [6]], [2, 3]),
        _v2([[1, 2, 3], [4, [5], 6]], [2, 3]),
        _v2([1, 2, 3, 4, 5, 6.5], [2, 3], "INT32"),
        _v2([1, 2, 3, 4, 5, 2**24 + 1], [2, 3], "INT64"),
        _v2([1, 2, 3, 4, 5], [2, 3]),
        _v2([[1, 2], [3, 4], [5, 6]], [2, 3]),
        _v2([True] * 6, [2, 3], "BOOL"),
    ],
)
def test_v2_edge_cases_never_make_the_paths_disagree(body: bytes) -> None:
    _assert_sound(body, _infer([TensorSpec("images", "float32", (-1, 3))]))


_ALPHABET = [*b'[]{},:"0123456789.-eE tfn\\', b"NaN"]


def _mutate(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data) + 1)
        action = rng.random()
        if action < 0.4 and data:
            del data[min(at, len(data) - 1)]
        elif action < 0.8:
            token = rng.choice(_ALPHABET)
            data[at:at] = token if isinstance(token, bytes) else bytes([token])
        else:
            end = min(len(data), at + rng.randint(1, 6))
            data[at:at] = data[at:end]  # duplicate a short run
    return bytes(data)


@pytest.mark.parametrize(
    ("seed", "base", "specs"),
    [(1, FAST_CASES[0][0], IMAGES), (2, FAST_CASES[2][0], IMAGES), (3, FAST_CASES[3][0], MULTI)],
)
def test_random_mutations_never_make_the_paths_disagree(
    seed: int, base: bytes, specs: list[TensorSpec]
) -> None:
    rng = random.Random(seed)
    accepted = sum(_assert_sound(_mutate(base, rng), _predict(specs)) is not Fallback for _ in range(1500))
    assert accepted > 10  # some mutations stay valid (spacing, digits), so both paths were compared


def test_v2_random_mutations_never_make_the_paths_disagree() -> None:
    rng, base = random.Random(4), FAST_CASES[5][0]
    for _ in range(1500):
        _assert_sound(_mutate(base, rng), _infer(IMAGES))


def test_a_document_still_referenced_costs_one_slow_decode_not_an_error() -> None:
    body = FAST_CASES[0][0]
    held = FastReader(body).root  # keeps this thread's parser busy
    assert decode_predict(body, IMAGES, LIMITS).inputs["images"].shape == (2, 2, 3)
    del held
    assert _fast(body, _predict(IMAGES)) is not Fallback


def test_each_thread_parses_with_its_own_parser() -> None:
    bodies = [orjson.dumps({"instances": (np.array(IMG) * i).tolist()}) for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda b: decode_fast(b, _predict(IMAGES)), bodies * 4))
    for i, result in enumerate(results):
        assert result.inputs["images"].tolist() == (np.array(IMG, np.float32) * (i % 16)).tolist()
