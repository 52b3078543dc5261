"""Minimal safetensors reader/writer (no dependency besides torch).

Format: 8-byte little-endian header length N, N bytes of JSON header
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``),
then the raw little-endian tensor bytes; offsets are relative to the end of the header.
"""

import ctypes
import json
import os
import struct
import sys
from collections import OrderedDict

import torch

from . import ConvertError

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024

if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("the safetensors reader assumes a little-endian machine")


def _element_size(dtype):
    return torch.empty((), dtype=dtype).element_size()


def read_header(path):
    """Return (header_dict_without_metadata, metadata, data_start, file_size); validates everything."""
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
        with open(name, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ConvertError(f"{name}: not a safetensors file (only {size} bytes; truncated?)")
            (n,) = struct.unpack("<Q", raw)
            if n == 0 or n > MAX_HEADER:
                raise ConvertError(f"{name}: not a safetensors file (header length {n} is implausible)")
            if 8 + n > size:
                raise ConvertError(
                    f"{name}: truncated safetensors file (header needs {8 + n} bytes, file has {size})")
            hbytes = f.read(n)
    except OSError as e:
        raise ConvertError(f"{name}: cannot read: {e.strerror or e}") from e
    try:
        header = json.loads(hbytes.decode("utf-8"), object_pairs_hook=OrderedDict)
    except (UnicodeDecodeError, ValueError) as e:
        raise ConvertError(f"{name}: corrupt safetensors header (invalid JSON: {e})") from e
    if not isinstance(header, dict):
        raise ConvertError(f"{name}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + n
    data_size = size - data_start
    spans = []
    for key, info in header.items():
        if not isinstance(info, dict) or "dtype" not in info or "shape" not in info or "data_offsets" not in info:
            raise ConvertError(f"{name}: corrupt safetensors header entry for '{key}'")
        if info["dtype"] not in DTYPES:
            raise ConvertError(f"{name}: tensor '{key}' has unsupported dtype {info['dtype']}")
        shape = info["shape"]
        offs = info["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and o >= 0 for o in offs) or offs[1] < offs[0]):
            raise ConvertError(f"{name}: corrupt safetensors header entry for '{key}'")
        numel = 1
        for d in shape:
            numel *= d
        need = numel * _element_size(DTYPES[info["dtype"]])
        if offs[1] - offs[0] != need:
            raise ConvertError(
                f"{name}: tensor '{key}' {info['dtype']}{shape} needs {need} bytes but its offsets span "
                f"{offs[1] - offs[0]}")
        if offs[1] > data_size:
            raise ConvertError(
                f"{name}: truncated safetensors file (tensor '{key}' ends at byte {data_start + offs[1]}, "
                f"file has {size} bytes)")
        spans.append((offs[0], offs[1], key))
    spans.sort()
    for (b0, e0, k0), (b1, e1, k1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ConvertError(f"{name}: corrupt safetensors file (tensors '{k0}' and '{k1}' overlap)")
    return header, metadata, data_start, size


def load_file(path):
    """Load every tensor of a safetensors file (CPU, original dtype) into an OrderedDict."""
    header, _meta, data_start, _size = read_header(path)
    out = OrderedDict()
    with open(path, "rb") as f:
        for key, info in header.items():
            dtype = DTYPES[info["dtype"]]
            b, e = info["data_offsets"]
            buf = bytearray(e - b)
            f.seek(data_start + b)
            got = f.readinto(buf) if e > b else 0
            if got != e - b:
                raise ConvertError(f"{os.fspath(path)}: truncated safetensors file (short read of '{key}')")
            if e > b:
                t = torch.frombuffer(buf, dtype=dtype)
            else:
                t = torch.empty(0, dtype=dtype)
            out[key] = t.reshape(info["shape"])
    return out


def _tensor_bytes(t):
    """A zero-copy, read-only view of a contiguous CPU tensor's bytes."""
    n = t.numel() * t.element_size()
    if n == 0:
        return b""
    return memoryview((ctypes.c_char * n).from_address(t.data_ptr())).cast("B")


def save_file(tensors, path, metadata=None):
    """Write tensors to ``path``.

    ``tensors``: mapping or list of (name, value) where value is a tensor, or a tuple
    (dtype, shape, producer) with producer() -> tensor, called lazily one at a time so huge
    checkpoints are written without holding them all in memory.
    """
    items = list(tensors.items()) if hasattr(tensors, "items") else list(tensors)
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    plan = []
    for name, value in items:
        if isinstance(value, torch.Tensor):
            dtype, shape, producer = value.dtype, list(value.shape), (lambda v=value: v)
        else:
            dtype, shape, producer = value
            shape = list(shape)
        if dtype not in DTYPE_NAMES:
            raise ConvertError(f"cannot write tensor '{name}' of dtype {dtype}")
        numel = 1
        for d in shape:
            numel *= d
        nbytes = numel * _element_size(dtype)
        header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": shape, "data_offsets": [offset, offset + nbytes]}
        plan.append((name, dtype, shape, producer, nbytes))
        offset += nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for name, dtype, shape, producer, nbytes in plan:
            t = producer()
            if list(t.shape) != shape or t.dtype != dtype:
                raise ConvertError(f"internal error: tensor '{name}' is {t.dtype}{list(t.shape)}, "
                                   f"expected {dtype}{shape}")
            t = t.detach().to("cpu").contiguous()
            f.write(_tensor_bytes(t))
            del t
    return offset + 8 + len(hbytes)
