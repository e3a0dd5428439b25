"""TF Serving's warm-up file, read without TensorFlow: ``assets.extra/tf_serving_warmup_requests``.

The file is a TFRecord file (each record: little-endian uint64 length, its masked CRC-32C, the
data, the data's masked CRC-32C) of ``tensorflow.serving.PredictionLog`` messages. Only the
protobuf wire format is needed to reach what a replay uses, so the field numbers of
``tensorflow_serving/apis/prediction_log.proto`` and ``predict.proto`` are written here
instead of depending on tensorflow-serving-api:

    PredictionLog.predict_log = 6 -> PredictLog.request = 1 -> PredictRequest.inputs = 2
    (a map: entries with key = 1, a string, and value = 2, a tensorflow.TensorProto)

Classify, regress and multi-inference logs (tf.Example inputs) are counted and skipped. The
TensorProto bytes are handed back as they are; ``service.models.runtime`` turns them into arrays.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving's own cap on warm-up records
_PREDICT_LOG, _REQUEST, _INPUTS, _KEY, _VALUE = 6, 1, 2, 1, 2
_VARINT, _LENGTH = 0, 2


class WarmupError(ValueError):
    """The warm-up file is not a TFRecord file of PredictionLog messages."""


@dataclass
class WarmupRequests:
    """Predict requests found in a warm-up file (input name -> TensorProto bytes), and what was skipped."""

    requests: list[dict[str, bytes]] = field(default_factory=list)
    skipped: int = 0


def read_warmup(path: Path) -> WarmupRequests:
    found = WarmupRequests()
    for number, record in enumerate(tfrecords(path.read_bytes()), 1):
        if number > MAX_RECORDS:
            raise WarmupError(f"{path} holds more than {MAX_RECORDS} records.")
        inputs = predict_inputs(record)
        if inputs is None:
            found.skipped += 1
        else:
            found.requests.append(inputs)
    return found


def tfrecords(data: bytes) -> Iterator[bytes]:
    """The records of a TFRecord file, their checksums verified."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            raise WarmupError(f"Truncated record header at byte {offset}.")
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        if masked_crc32c(header) != length_crc:
            raise WarmupError(f"Corrupt record length at byte {offset}.")
        start, end = offset + 12, offset + 12 + length
        if end + 4 > len(data):
            raise WarmupError(f"Truncated record at byte {offset}.")
        record = data[start:end]
        if masked_crc32c(record) != struct.unpack("<I", data[end : end + 4])[0]:
            raise WarmupError(f"Corrupt record data at byte {offset}.")
        yield record
        offset = end + 4


def predict_inputs(log: bytes) -> dict[str, bytes] | None:
    """PredictionLog -> its PredictRequest's inputs, or None for another kind of log."""
    predict_log = _last(log, _PREDICT_LOG)
    if predict_log is None:
        return None
    request = _last(predict_log, _REQUEST) or b""
    inputs: dict[str, bytes] = {}
    for number, value in _fields(request):
        if number == _INPUTS:
            entry = dict(_fields(value))
            inputs[bytes(entry.get(_KEY, b"")).decode("utf-8")] = bytes(entry.get(_VALUE, b""))
    return inputs


def _last(message: bytes, wanted: int) -> bytes | None:
    """The last occurrence of length-delimited field ``wanted`` (protobuf: the last one wins)."""
    found = None
    for number, value in _fields(message):
        if number == wanted:
            found = value
    return found


def _fields(message: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, payload) of every length-delimited field; other wire types are skipped."""
    offset = 0
    while offset < len(message):
        key, offset = _varint(message, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            _, offset = _varint(message, offset)
        elif wire_type == _LENGTH:
            size, offset = _varint(message, offset)
            if offset + size > len(message):
                raise WarmupError("A PredictionLog field runs past the end of its record.")
            yield number, message[offset : offset + size]
            offset += size
        elif wire_type == 1:  # 64-bit
            offset += 8
        elif wire_type == 5:  # 32-bit
            offset += 4
        else:
            raise WarmupError(f"Unsupported protobuf wire type {wire_type} in a PredictionLog.")


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if offset >= len(data) or shift > 63:
            raise WarmupError("A PredictionLog holds a malformed varint.")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # CRC-32C (Castagnoli), reflected
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
