"""latefold's file format: one file per object, versioned, checksummed, 64-byte aligned.

Layout (all integers little-endian)::

    offset 0    header, 64 bytes
                  magic        8 bytes  b"LATEFOLD"
                  version      u32      format version (FORMAT_VERSION)
                  byte_order   u32      0x01020304 (a big-endian writer would show 0x04030201)
                  kind         16 bytes ASCII, zero-padded: what the file holds ("fde", ...)
                  sections     u32      number of sections
                  header_crc   u32      CRC-32 of bytes 0..35 and of the section table
                  reserved     24 bytes zero
    offset 64   section table, 64 bytes per section
                  name         32 bytes ASCII, zero-padded
                  offset       u64      multiple of 64, so arrays can be memory-mapped in place
                  length       u64      bytes
                  crc          u32      CRC-32 of the section's bytes
                  reserved     12 bytes zero
    then        the sections, each starting on a 64-byte boundary

The first section, "meta", is UTF-8 JSON: the object's parameters and, for each array section,
its dtype and shape. ``save`` writes a temporary file in the same folder, flushes and syncs it,
then renames it over the target, so a crash never leaves a half-written file under the final
name. ``load`` checks magic, version, byte order, kind, bounds and every checksum before it
returns anything, and raises ``ValueError`` naming the problem.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib
from typing import Any, Dict, Mapping, Tuple

import numpy as np

MAGIC = b"LATEFOLD"
FORMAT_VERSION = 1
BYTE_ORDER = 0x01020304
ALIGN = 64
HEADER = struct.Struct("<8sII16sII24s")
ENTRY = struct.Struct("<32sQQI12s")
assert HEADER.size == 64 and ENTRY.size == 64


def _pad(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def save(path: "os.PathLike[str] | str", kind: str, meta: Mapping[str, Any],
         arrays: Mapping[str, np.ndarray] = {}) -> None:
    """Writes one object atomically: `meta` (JSON-serialisable) and named arrays."""
    path = os.fspath(path)
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    full_meta = dict(meta)
    full_meta["arrays"] = {n: {"dtype": a.dtype.str, "shape": list(a.shape)} for n, a in arrays.items()}
    payloads = [("meta", json.dumps(full_meta, sort_keys=True).encode("utf-8"))]
    payloads += [(name, a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()) for name, a in arrays.items()]
    offset = _pad(HEADER.size + ENTRY.size * len(payloads))
    table = b""
    for name, data in payloads:
        encoded = name.encode("ascii")
        if len(encoded) > 32:
            raise ValueError(f"section name too long: {name}")
        table += ENTRY.pack(encoded, offset, len(data), zlib.crc32(data), b"")
        offset = _pad(offset + len(data))
    head = HEADER.pack(MAGIC, FORMAT_VERSION, BYTE_ORDER, kind.encode("ascii"), len(payloads), 0, b"")
    crc = zlib.crc32(head[:36] + table)
    head = HEADER.pack(MAGIC, FORMAT_VERSION, BYTE_ORDER, kind.encode("ascii"), len(payloads), crc, b"")

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".latefold-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head + table)
            for entry, (_, data) in enumerate(payloads):
                start = ENTRY.unpack_from(table, entry * ENTRY.size)[1]
                f.write(b"\0" * (start - f.tell()))
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load(path: "os.PathLike[str] | str", kind: str, mmap: bool = False
         ) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """Reads and verifies a file written by `save`; returns (meta, arrays).

    With ``mmap=True`` arrays are read-only memory maps of the file (still verified once)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    where = f"{path!r}"
    if len(blob) < HEADER.size:
        raise ValueError(f"{where} is not a latefold file (too short: {len(blob)} bytes)")
    magic, version, order, file_kind, count, crc, _ = HEADER.unpack_from(blob, 0)
    if magic != MAGIC:
        raise ValueError(f"{where} is not a latefold file (bad magic)")
    if order != BYTE_ORDER:
        raise ValueError(f"{where} was written with another byte order")
    if version != FORMAT_VERSION:
        raise ValueError(f"{where} has file format version {version}; this latefold reads "
                         f"version {FORMAT_VERSION}" + (" (upgrade latefold)" if version > FORMAT_VERSION else ""))
    table_end = HEADER.size + ENTRY.size * count
    if count < 1 or table_end > len(blob):
        raise ValueError(f"{where} is truncated or corrupt (section table)")
    table = blob[HEADER.size:table_end]
    if zlib.crc32(blob[:36] + table) != crc:
        raise ValueError(f"{where} is corrupt (header checksum mismatch)")
    found = file_kind.rstrip(b"\0").decode("ascii", "replace")
    if found != kind:
        raise ValueError(f"{where} holds a {found!r}, not a {kind!r}")
    sections: Dict[str, Tuple[int, int]] = {}
    for i in range(count):
        raw_name, offset, length, section_crc, _ = ENTRY.unpack_from(table, i * ENTRY.size)
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        if offset % ALIGN or offset < table_end or offset + length > len(blob):
            raise ValueError(f"{where} is truncated or corrupt (section {name!r} out of bounds)")
        if zlib.crc32(blob[offset:offset + length]) != section_crc:
            raise ValueError(f"{where} is corrupt (checksum mismatch in section {name!r})")
        sections[name] = (offset, length)
    if "meta" not in sections:
        raise ValueError(f"{where} is corrupt (no meta section)")
    offset, length = sections["meta"]
    try:
        meta = json.loads(blob[offset:offset + length].decode("utf-8"))
        descriptors = meta.pop("arrays")
        if not isinstance(descriptors, dict):
            raise TypeError("array table is not a mapping")
    except (UnicodeDecodeError, ValueError, KeyError, AttributeError, TypeError) as error:
        raise ValueError(f"{where} is corrupt (meta section: {error})") from None
    arrays: Dict[str, np.ndarray] = {}
    for name, desc in descriptors.items():
        if name not in sections:
            raise ValueError(f"{where} is corrupt (missing section {name!r})")
        offset, length = sections[name]
        try:
            dtype = np.dtype(desc["dtype"])
            shape = tuple(int(n) for n in desc["shape"])
            size = math.prod(shape)
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise ValueError(f"{where} is corrupt (array {name!r}: {error})") from None
        if dtype.hasobject or any(n < 0 for n in shape) or size * dtype.itemsize != length:
            raise ValueError(f"{where} is corrupt (array {name!r} does not match its section)")
        if mmap:
            arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
        else:
            arrays[name] = np.frombuffer(blob, dtype=dtype, count=size, offset=offset).reshape(shape)
    return meta, arrays
