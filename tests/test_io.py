"""The file format: what save writes (checked with numpy alone), memory-mapped loads that never
write to the file, checksum verification on demand, and paths that are not regular files."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import latefold as lf
from reference import container


@pytest.fixture
def graph(rng):
    x = rng.standard_normal((400, 12)).astype(np.float32)
    pq = lf.ProductQuantizer(12, m=4, nbits=8, metric="l2").train(x, iterations=3)
    index = lf.GraphIndex(12, metric="l2", degree=8, quantizer=pq)
    ids = np.arange(400) * 5 - 7
    index.add(x, ids, attributes={"year": rng.integers(0, 9, 400), "tags": [[i % 3] for i in range(400)]})
    index.delete(ids[:3])
    return index, x, ids, rng.standard_normal((4, 12)).astype(np.float32)


def test_a_file_is_its_objects_arrays(graph, tmp_path):
    index, x, ids, _ = graph
    path = tmp_path / "g.lf"
    index.save(path)
    version, kind, meta, _ = container.read(path)  # checks every checksum and alignment
    assert (version, kind) == (2, "graph")
    assert set(meta["objects"]) == {"graph", "graph/pq"}
    assert meta["objects"]["graph"]["params"] == index.params
    assert meta["objects"]["graph/pq"]["params"] == {"dim": 12, "m": 4, "nbits": 8, "metric": "l2"}
    arrays = container.arrays(path)
    np.testing.assert_array_equal(arrays["graph/vectors"], x)
    np.testing.assert_array_equal(arrays["graph/ids"], ids)
    assert arrays["graph/edges"].shape == (400, 8)
    np.testing.assert_array_equal(arrays["graph/pq/centroids"], index.quantizer._pq.centroids())
    np.testing.assert_array_equal(arrays["graph/codes"], index.quantizer.encode(x))


def test_version_1_files_save_as_version_2(tmp_path):
    old = os.path.join(os.path.dirname(__file__), "fixtures", "v1", "graph_pq_l2.lf")
    index = lf.GraphIndex.load(old)
    q = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    expected = index.search(q, 5)
    index.save(tmp_path / "new.lf")
    assert container.read(tmp_path / "new.lf")[0] == 2
    again = lf.GraphIndex.load(tmp_path / "new.lf")
    for a, b in zip(again.search(q, 5), expected):
        np.testing.assert_array_equal(a, b)


def test_a_mapped_index_never_writes_its_file(graph, tmp_path):
    index, x, ids, q = graph
    path = tmp_path / "g.lf"
    index.save(path)
    before = path.read_bytes()
    expected = index.search(q, 5)
    mapped = lf.GraphIndex.load(path, mmap=True)
    for a, b in zip(mapped.search(q, 5), expected):
        np.testing.assert_array_equal(a, b)
    mapped.add(x[:5] + 1, [10**9 + i for i in range(5)], attributes={"year": np.zeros(5, np.int64), "tags": [[]] * 5})
    mapped.delete(ids[10:20])
    mapped.compact()
    assert len(mapped) == len(index) + 5 - 10
    assert path.read_bytes() == before
    for a, b in zip(lf.GraphIndex.load(path, mmap=True).search(q, 5), expected):
        np.testing.assert_array_equal(a, b)


def test_verify_reads_every_checksum_only_when_asked(graph, tmp_path):
    index, _, _, q = graph
    path = tmp_path / "g.lf"
    index.save(path)
    _, _, meta, sections = container.read(path)
    blob = bytearray(path.read_bytes())
    start = blob.index(sections["graph/vectors"])
    blob[start + 5] ^= 0x10  # a vector's byte: no index depends on it
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum mismatch in section 'graph/vectors'"):
        lf.GraphIndex.load(path)
    for mmap in (False, True):
        loaded = lf.GraphIndex.load(path, mmap=mmap, verify=False)
        assert len(loaded) == len(index)
        loaded.search(q, 5)
    # What searches follow is checked whether or not checksums are.
    blob = bytearray(path.read_bytes())
    start = blob.index(sections["graph/edges"])
    blob[start:start + 4] = (10**6).to_bytes(4, "little")
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="edge of slot 0"):
        lf.GraphIndex.load(path, verify=False)


def test_only_regular_files(tmp_path, graph):
    index = graph[0]
    with pytest.raises(ValueError, match="not a regular file"):
        lf.GraphIndex.load("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        lf.FDE.load(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        lf.ProductQuantizer.load(fifo)  # refused at once, without waiting for a writer
    with pytest.raises(ValueError, match="not a regular file"):
        index.save(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        index.save(tmp_path)
    with pytest.raises(FileNotFoundError):
        lf.GraphIndex.load(tmp_path / "missing.lf")
    with pytest.raises(FileNotFoundError):
        index.save(tmp_path / "no" / "such" / "folder.lf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]
    empty = tmp_path / "empty.lf"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="too short"):
        lf.GraphIndex.load(empty)


def test_saved_files_follow_the_umask_and_leave_nothing_behind(tmp_path):
    previous = os.umask(0o027)
    try:
        lf.FDE(4, 1, 1).save(tmp_path / "a.lf")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.lf").stat().st_mode) == 0o640
    lf.FDE(4, 1, 1).save(tmp_path / "a.lf")  # replaces
    assert [p.name for p in tmp_path.iterdir()] == ["a.lf"]


def test_objects_of_other_kinds_are_named(tmp_path):
    lf.ProductQuantizer(8, 2).save(tmp_path / "pq.lf")
    with pytest.raises(ValueError, match="holds a 'pq', not a 'graph'"):
        lf.GraphIndex.load(tmp_path / "pq.lf")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file locks")
def test_a_save_removes_temporary_files_that_a_killed_save_left(tmp_path):
    import fcntl
    import time

    old = time.time() - 3600
    stale = tmp_path / ".a.lf.0123abcd.tmp"      # a killed save's: old, unlocked
    fresh = tmp_path / ".a.lf.89abcdef.tmp"      # just created by another save
    live = tmp_path / ".a.lf.deadbeef.tmp"       # being written: locked
    other = tmp_path / ".b.lf.01234567.tmp"      # another file's
    odd = tmp_path / ".a.lf.notmine.tmp"         # not a name save makes
    for p in (stale, fresh, live, other, odd):
        p.write_bytes(b"partial")
    for p in (stale, live, other, odd):
        os.utime(p, (old, old))
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        lf.FDE(4, 1, 1).save(tmp_path / "a.lf")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.lf", fresh.name, live.name, other.name, odd.name])
