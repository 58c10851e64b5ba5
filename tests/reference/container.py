"""The file format read with numpy alone (the oracle of tests/test_io.py): header, section
table, meta JSON and every array, checked as the format description in io.h says."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np

HEADER = struct.Struct("<8sII16sII24s")
ENTRY = struct.Struct("<32sQQI12s")


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli), bit by bit: slow and obviously right."""
    crc ^= 0xFFFFFFFF
    table = _table()
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


_TABLE = []


def _table():
    if not _TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _TABLE.append(c)
    return _TABLE


def read(path):
    """(version, kind, meta, {section name: bytes}) after checking every checksum."""
    blob = open(path, "rb").read()
    magic, version, order, kind, count, crc, _ = HEADER.unpack_from(blob, 0)
    assert magic == b"LATEFOLD" and order == 0x01020304
    table = blob[64:64 + 64 * count]
    check = zlib.crc32 if version == 1 else crc32c
    assert check(blob[:36] + table) == crc, "header checksum"
    sections = {}
    for i in range(count):
        name, offset, length, section_crc, _ = ENTRY.unpack_from(table, 64 * i)
        name = name.rstrip(b"\0").decode()
        assert offset % 64 == 0 and offset + length <= len(blob)
        data = blob[offset:offset + length]
        assert check(data) == section_crc, f"checksum of {name}"
        sections[name] = data
    meta = json.loads(sections["meta"])
    return version, kind.rstrip(b"\0").decode(), meta, sections


def arrays(path):
    """Every array of a version-2 file as numpy arrays, by section name."""
    version, _, meta, sections = read(path)
    assert version == 2
    return {name: np.frombuffer(sections[name], dtype=np.dtype(d["dtype"])).reshape(d["shape"])
            for name, d in meta["arrays"].items()}


def write(path, version, kind, sections):
    """A file of these sections (name -> bytes, "meta" among them), every checksum valid: for
    files whose content is crafted, not corrupted."""
    check = zlib.crc32 if version == 1 else crc32c
    start = 64 + 64 * len(sections)
    table, body = b"", b""
    for name, data in sections.items():
        body += b"\0" * (-(start + len(body)) % 64)  # sections start at multiples of 64
        table += ENTRY.pack(name.encode(), start + len(body), len(data), check(data), b"")
        body += data
    head = HEADER.pack(b"LATEFOLD", version, 0x01020304, kind.encode(), len(sections), 0, b"")
    crc = check(head[:36] + table)
    head = HEADER.pack(b"LATEFOLD", version, 0x01020304, kind.encode(), len(sections), crc, b"")
    with open(path, "wb") as f:
        f.write(head + table + body)
