"""A small, fast reader of GGUF model files (llama.cpp's format): metadata, tensor table, float32 tensors.

Why not ``gguf.GGUFReader``: it builds a numpy view per array element while parsing the header, which for
a 49k-token vocabulary plus 49k BPE merges (SmolLM2) takes 3-5 s before the first tensor is touched. This
reader parses the same header with plain byte slicing (about 0.1 s) and memory-maps the tensor data;
:meth:`GGUFFile.tensor` dequantizes with the ``gguf`` package's own block decoders (``gguf.quants``), so the
block formats (Q4_1, Q8_0, ...) are decoded by the reference code that ships with the format. The tests
compare this reader with ``gguf.GGUFReader`` field by field and tensor by tensor.

Layout (GGUF v2/v3, little-endian): magic ``GGUF``, version u32, tensor count u64, key/value count u64;
the key/value pairs (key string, value type u32, value; arrays are element type u32, count u64,
elements; strings are length u64 plus UTF-8 bytes); one entry per tensor (name, n_dims u32, dims u64
each, innermost first, ggml type u32, offset u64 from the start of the data); the data starts at the
next multiple of ``general.alignment`` (default 32).

Shapes are given in numpy order (outermost first): a ggml tensor with dims ``[576, 49152]`` is a
``(49152, 576)`` array, one row per token; a PyTorch ``Linear`` weight keeps its ``(out, in)`` layout.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GGUFFile", "TensorInfo", "read_gguf"]

_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32

# GGUFValueType codes (gguf.constants.GGUFValueType): fixed-size scalars as struct formats.
_SCALAR_FMT = {
    code: "<" + c for code, c in zip((0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12), "BbHhIif?Qqd", strict=True)
}
_SCALAR_DTYPE = {k: np.dtype(v) for k, v in _SCALAR_FMT.items()}  # numpy reads struct's codes
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table.

    Attributes
    ----------
    name : str
    shape : tuple of int
        numpy order (outermost first), in elements.
    ggml_type : int
        ``gguf.GGMLQuantizationType`` code (0 F32, 1 F16, 3 Q4_1, 8 Q8_0, ...).
    offset : int
        Absolute byte offset of the data in the file.
    nbytes : int
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    nbytes: int

    @property
    def type_name(self) -> str:
        """The ggml type name, e.g. ``"Q4_1"``."""
        from gguf.constants import GGMLQuantizationType

        return GGMLQuantizationType(self.ggml_type).name


class GGUFFile:
    """An open GGUF file: ``fields`` (metadata by key, plain Python values) and ``tensors`` (by name).

    Strings are ``str``, arrays of strings are ``list[str]``, numeric arrays are numpy arrays, scalars are
    ``int``/``float``/``bool``. The tensor data stays memory-mapped until :meth:`tensor` or :meth:`raw`
    reads it.
    """

    def __init__(self, path: Path, version: int, fields: dict[str, Any], tensors: dict[str, TensorInfo],
                 buf: mmap.mmap) -> None:  # fmt: skip
        self.path = path
        self.version = version
        self.fields = fields
        self.tensors = tensors
        self._buf = buf

    def raw(self, name: str) -> np.ndarray:
        """The tensor's stored bytes as ``uint8`` with shape ``shape[:-1] + (bytes per row,)`` (read-only)."""
        t = self._info(name)
        rows = int(np.prod(t.shape[:-1], dtype=np.int64))
        a = np.frombuffer(self._buf, dtype=np.uint8, count=t.nbytes, offset=t.offset)
        return a.reshape(*t.shape[:-1], t.nbytes // max(rows, 1))

    def tensor(self, name: str) -> np.ndarray:
        """The tensor dequantized to a new C-contiguous float32 array of shape ``shape``.

        Block formats go through the ``gguf`` package's decoder for the type
        (``gguf.quants.<TYPE>.dequantize_blocks``) applied to all blocks at once, about twice as fast as
        :func:`gguf.quants.dequantize`, which runs the same decoder 16 rows at a time; other types use
        :func:`gguf.quants.dequantize`.
        """
        import gguf.quants
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        t = self._info(name)
        qtype = GGMLQuantizationType(t.ggml_type)
        raw = self.raw(name)
        block, type_size = GGML_QUANT_SIZES[qtype]
        decoder = getattr(gguf.quants, qtype.name, None)
        if block > 1 and hasattr(decoder, "dequantize_blocks"):
            out = decoder.dequantize_blocks(raw.reshape(-1, type_size))
        else:
            out = gguf.quants.dequantize(raw, qtype)
        out = np.ascontiguousarray(out, dtype=np.float32).reshape(t.shape)
        return out.copy() if np.may_share_memory(out, raw) else out  # F32 is a view of the file

    def _info(self, name: str) -> TensorInfo:
        try:
            return self.tensors[name]
        except KeyError:
            raise ValueError(f"{self.path}: no tensor named {name!r}") from None


class _Cursor:
    def __init__(self, buf: mmap.mmap, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> int:
        p = self.pos
        if p + n > len(self.buf):
            raise ValueError(
                f"{self.path}: truncated GGUF header (needs byte {p + n}, file has {len(self.buf)})"
            )
        self.pos = p + n
        return p

    def scalar(self, vtype: int) -> Any:
        fmt = _SCALAR_FMT[vtype]
        return struct.unpack_from(fmt, self.buf, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        (n,) = struct.unpack_from("<Q", self.buf, self.take(8))
        p = self.take(n)
        return self.buf[p : p + n].decode("utf-8")

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.scalar(4), self.scalar(10)
            if etype == _STRING:
                return [self.string() for _ in range(count)]
            if etype == _ARRAY:
                return [self.value(_ARRAY) for _ in range(count)]
            dt = self._dtype(etype)
            p = self.take(dt.itemsize * count)
            return np.frombuffer(self.buf, dtype=dt, count=count, offset=p).copy()
        self._dtype(vtype)  # validates the code
        return self.scalar(vtype)

    def _dtype(self, vtype: int) -> np.dtype:
        if vtype not in _SCALAR_DTYPE:
            raise ValueError(f"{self.path}: unknown GGUF value type {vtype} at byte {self.pos}")
        return _SCALAR_DTYPE[vtype]


def read_gguf(path: str | Path) -> GGUFFile:
    """Parse a GGUF file's header and tensor table; the tensor data is memory-mapped, not read.

    Raises
    ------
    ValueError
        Not a GGUF file, an unsupported version (only 2 and 3, little-endian), a truncated header, an
        unknown value or tensor type, or a tensor reaching past the end of the file.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    p = Path(path)
    with open(p, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # empty file
            raise ValueError(f"{p}: not a GGUF file (empty)") from None
    if buf[:4] != _MAGIC:
        raise ValueError(f"{p}: not a GGUF file (magic {bytes(buf[:4])!r}, expected b'GGUF')")
    c = _Cursor(buf, p)
    c.take(4)
    version = c.scalar(4)
    if version not in (2, 3):
        raise ValueError(f"{p}: GGUF version {version} is not supported (2 or 3, little-endian)")
    n_tensors, n_kv = c.scalar(10), c.scalar(10)
    fields: dict[str, Any] = {}
    for _ in range(n_kv):
        key = c.string()
        fields[key] = c.value(c.scalar(4))
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        dims = [c.scalar(10) for _ in range(c.scalar(4))]
        gtype, off = c.scalar(4), c.scalar(10)
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(gtype)]
        except (ValueError, KeyError):
            raise ValueError(f"{p}: tensor {name!r} has unknown ggml type {gtype}") from None
        n = int(np.prod(dims, dtype=np.int64))
        if dims and dims[0] % block:
            raise ValueError(f"{p}: tensor {name!r} row of {dims[0]} is not a multiple of its block {block}")
        infos.append((name, tuple(reversed(dims)), gtype, off, n // block * type_size))
    align = int(fields.get("general.alignment", _DEFAULT_ALIGNMENT))
    if align <= 0 or align & (align - 1):
        raise ValueError(f"{p}: general.alignment {align} is not a power of two")
    start = -(-c.pos // align) * align
    tensors = {}
    for name, shape, gtype, off, nbytes in infos:
        if start + off + nbytes > len(buf):
            raise ValueError(f"{p}: tensor {name!r} reaches past the end of the file")
        tensors[name] = TensorInfo(name, shape, gtype, start + off, nbytes)
    return GGUFFile(p, version, fields, tensors, buf)
