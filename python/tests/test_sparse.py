"""The sparse codec from Python (bcae.sparse_encode / sparse_decode, sparse
containers) against its guarantees and against `bcae compress --codec sparse`."""

import warnings

import numpy as np
import pytest

import bcae

V = 192 * 249 * 16


def log_error(a, b):
    """max |log2(b + 1) - log2(a + 1)| over the voxels (float64)."""
    return float(np.max(np.abs(np.log2(b.astype(np.float64) + 1) -
                               np.log2(a.astype(np.float64) + 1))))


def check_bound(original, decoded, e):
    """Positions exact, every voxel within e (the integer output included)."""
    assert decoded.dtype == np.uint16 and decoded.shape == original.shape
    assert np.array_equal(decoded != 0, original != 0), "occupancy differs"
    if e == 0:
        assert np.array_equal(decoded, original)
    else:
        # The bound holds in exact arithmetic; 1e-12 covers float64's log2.
        assert log_error(original, decoded) <= e + 1e-12


@pytest.fixture(scope="session")
def wide(tmp_path_factory):
    """A wedge with values over the whole uint16 range (> 1023 too), as a
    stack of one, and its .npy file for the CLI."""
    rng = np.random.default_rng(5)
    w = np.zeros(bcae.WEDGE_SHAPE, np.uint16)
    hit = rng.random(bcae.WEDGE_SHAPE) < 0.05
    w[hit] = rng.integers(1, 65536, size=int(hit.sum()), dtype=np.uint16)
    w[0, 0, :] = 65535
    w[1, 5, 3] = 1024
    folder = tmp_path_factory.mktemp("wide")
    np.save(folder / "wide.npy", w)
    return w, folder


@pytest.mark.parametrize("e", [0.0, 0.02, 0.1, 1.0])
def test_round_trip_within_the_bound(wedges, e):
    streams = bcae.sparse_encode(wedges, max_error=e)
    assert isinstance(streams, list) and len(streams) == len(wedges)
    assert all(isinstance(s, bytes) for s in streams)
    back = bcae.sparse_decode(streams)
    assert back.shape == wedges.shape
    for w, b in zip(wedges, back):
        check_bound(w, b, e)
    if e == 0.1:
        assert sum(map(len, streams)) < wedges.nbytes / 10


@pytest.mark.parametrize("e", [0.0, 0.05, 3.0])
def test_values_above_1023(wide, e):
    w, _ = wide
    stream = bcae.sparse_encode(w, e)
    assert isinstance(stream, bytes)
    back = bcae.sparse_decode(stream)
    assert back.shape == bcae.WEDGE_SHAPE
    check_bound(w, back, e)
    assert back.max() > 1023


def test_single_and_stack_forms(wedges):
    one = bcae.sparse_encode(wedges[0], 0.05)
    stack = bcae.sparse_encode(wedges[:1], 0.05)
    assert isinstance(one, bytes) and stack == [one]
    assert bcae.sparse_decode(one).shape == bcae.WEDGE_SHAPE
    assert bcae.sparse_decode([one]).shape == (1,) + bcae.WEDGE_SHAPE
    # Any bytes-like stream: bytearray, memoryview, uint8 array.
    ref = bcae.sparse_decode(one)
    for form in (bytearray(one), memoryview(one), np.frombuffer(one, np.uint8)):
        assert np.array_equal(bcae.sparse_decode(form), ref)
    assert bcae.sparse_decode([]).shape == (0,) + bcae.WEDGE_SHAPE
    assert bcae.sparse_encode(np.zeros((0,) + bcae.WEDGE_SHAPE, np.uint16)) == []
    # Non-contiguous and big-endian uint16 are re-laid out, never converted.
    fortran = np.asfortranarray(wedges[0])
    assert bcae.sparse_encode(fortran, 0.05) == one
    assert bcae.sparse_encode(wedges[0].astype(">u2"), 0.05) == one


def test_info(wedges):
    streams, infos = bcae.sparse_encode(wedges[:2], 0.05, info=True)
    keys = {"max_error", "mult", "hits", "levels", "occupancy_bytes", "value_bytes",
            "total_bytes", "stored", "met"}
    for s, d, w in zip(streams, infos, wedges):
        assert set(d) == keys
        assert 0.0499 < d["max_error"] <= 0.05
        assert d["hits"] == np.count_nonzero(w) and d["total_bytes"] == len(s)
        assert d["occupancy_bytes"] + d["value_bytes"] + 40 == len(s)
        assert not d["stored"] and d["met"] and d["levels"] > 0
        peek = bcae.sparse_info(s)
        assert {k: peek[k] for k in keys - {"levels"}} == {k: d[k] for k in keys - {"levels"}}
        _, dinfo = bcae.sparse_decode(s, info=True)
        assert dinfo == d
    _, lossless = bcae.sparse_encode(wedges[0], info=True)
    assert lossless["max_error"] == 0 and lossless["mult"] == 2**32


def test_ratio_mode(wedges):
    streams, infos = bcae.sparse_encode(wedges[:3], ratio=30, info=True)
    for s, d, w in zip(streams, infos, wedges):
        assert d["met"] and len(s) <= V * 2 // 30
        # The bound on the grid of 1/512, as --ratio reports it.
        k = round(d["max_error"] * 512)
        assert abs(d["max_error"] - k / 512) < 1e-6
        check_bound(w, bcae.sparse_decode(s), d["max_error"])
    # Unreachable: the coarsest bound, and met says so.
    _, d = bcae.sparse_encode(wedges[0], ratio=1e6, info=True)
    assert not d["met"] and d["max_error"] == pytest.approx(8, abs=1e-6)


def test_streams_equal_the_clis(sample, wedges, wedge_files, cli, tmp_path):
    for opt, kw in ((["--max-error", "0.05"], {"max_error": 0.05}), ([], {}),
                    (["--ratio", "40"], {"ratio": 40})):
        out = tmp_path / "cli.bcae"
        cli("compress", "-q", "--codec", "sparse", *opt, "-o", out, *wedge_files, cwd=sample)
        with bcae.Container(out) as c:
            assert c.codec == "sparse" and c.version == 2 and c.model is None
            stored = c.codes()
        assert stored == bcae.sparse_encode(wedges, **kw), opt
        # The whole file, too.
        py = tmp_path / "py.bcae"
        with bcae.ContainerWriter(py, codec="sparse", **kw) as w:
            w.write(wedge_files, wedges)
        assert py.read_bytes() == out.read_bytes(), opt
        assert len(w.infos) == len(wedges) and w.model is None


def test_wide_values_equal_the_clis(wide, cli, tmp_path):
    w, folder = wide
    cli("compress", "-q", "--codec", "sparse", "--max-error", "0.02", "-o", tmp_path / "c.bcae",
        "wide.npy", cwd=folder)
    with bcae.Container(tmp_path / "c.bcae") as c:
        assert c.codes() == [bcae.sparse_encode(w, 0.02)]
        rec = c[0]
    check_bound(w, rec.wedge, 0.02)


def test_container_reads_the_clis_file(sample, wedges, wedge_files, cli, tmp_path):
    out = tmp_path / "cli.bcae"
    cli("compress", "-q", "--codec", "sparse", "--max-error", "0.02", "-o", out, *wedge_files,
        cwd=sample)
    cli("decompress", "-q", "-o", tmp_path / "adc", out)
    cli("decompress", "-q", "--output", "log", "-o", tmp_path / "log", out)
    with bcae.Container(out) as c:
        assert c.model is None and c.arch == "sparse" and c.code_shape == ()
        assert c.fingerprint == "0" * 64 and "sparse" in repr(c)
        records = list(c)
        assert len(c) == len(wedges) and c.names() == wedge_files
        for i in (4, 0, -1):
            r = c[i]
            assert r.name == records[i].name and r.code == records[i].code
            assert np.array_equal(r.wedge, records[i].wedge)
    for r, w in zip(records, wedges):
        assert isinstance(r.code, bytes) and r.shape == bcae.WEDGE_SHAPE
        assert np.array_equal(r.wedge, np.load(tmp_path / "adc" / r.name))
        check_bound(w, r.wedge, 0.02)
    names, logs = bcae.decompress(out, output="log")
    assert names == wedge_files and logs.dtype == np.float32
    for name, lg in zip(names, logs):
        assert np.array_equal(lg, np.load(tmp_path / "log" / name))
    assert np.array_equal(bcae.sparse_decode(records[0].code, output="log"), logs[0])
    # decode=False: the streams only; a model given is not used, with a warning.
    with bcae.Container(out, decode=False) as c:
        assert c[1].wedge is None and c[1].code == records[1].code
    with pytest.warns(UserWarning, match="no model is used"):
        c = bcae.Container(out, model="ignored")
    assert c.model is None
    c.close()


def test_compress_and_decompress_helpers(wedges, tmp_path):
    path = tmp_path / "h.bcae"
    stats = bcae.compress(path, wedges, codec="sparse", max_error=0.05, threads=2)
    assert stats["new_records"] == len(wedges) and stats["file_bytes"] == path.stat().st_size
    names, back = bcae.decompress(path)
    assert names == [f"wedge_{i:06d}.npy" for i in range(len(wedges))]
    for w, b in zip(wedges, back):
        check_bound(w, b, 0.05)
    bcae.compress(tmp_path / "l.bcae", wedges[0], codec="sparse")
    _, one = bcae.decompress(tmp_path / "l.bcae")
    assert np.array_equal(one[0], wedges[0])


def test_append_equals_cli(sample, wedges, wedge_files, cli, tmp_path):
    cli("compress", "-q", "--codec", "sparse", "-o", tmp_path / "cli.bcae", *wedge_files[:2],
        cwd=sample)
    cli("compress", "-q", "--codec", "sparse", "--append", "-o", tmp_path / "cli.bcae",
        *wedge_files[2:4], cwd=sample)
    with bcae.ContainerWriter(tmp_path / "py.bcae", codec="sparse") as w:
        w.write(wedge_files[:2], wedges[:2])
    with bcae.ContainerWriter(tmp_path / "py.bcae", codec="sparse", append=True) as w:
        w.write(wedge_files[2:4], wedges[2:4])
    assert (tmp_path / "py.bcae").read_bytes() == (tmp_path / "cli.bcae").read_bytes()
    # A model's writer cannot append to it, nor a sparse one to a model's file.
    with pytest.raises(bcae.Error):
        bcae.ContainerWriter(tmp_path / "py.bcae", bcae.Model(), append=True)


def test_writer_add_and_errors(wedges, tmp_path):
    s = bcae.sparse_encode(wedges[0], 0.05)
    with bcae.ContainerWriter(tmp_path / "a.bcae", codec="sparse") as w:
        w.add("a.npy", s)
        with pytest.raises(bcae.InvalidArgumentError):
            w.add("a.npy", s)
        with pytest.raises(bcae.InvalidArgumentError):       # not a code file
            w._w.append("b.npy", np.zeros((32, 24, 32), np.float16))
    with bcae.Container(tmp_path / "a.bcae") as c:
        assert c.codes() == [s]
    for kw in ({"codec": "zfp"}, {"codec": "sparse", "zstd": 3},
               {"codec": "sparse", "max_error": 0.1, "ratio": 10},
               {"codec": "sparse", "ratio": 0}, {"max_error": 0.1}):
        with pytest.raises(bcae.InvalidArgumentError):
            bcae.ContainerWriter(tmp_path / "b.bcae", **kw)
        assert not (tmp_path / "b.bcae").exists()
    with pytest.raises(bcae.InvalidArgumentError):
        bcae.ContainerWriter(tmp_path / "b.bcae", bcae.Model(), codec="sparse")
    with pytest.raises(bcae.ShapeError):
        with bcae.ContainerWriter(tmp_path / "c.bcae", codec="sparse") as w:
            w.write(["one.npy"], wedges[:2])
    assert not (tmp_path / "c.bcae").exists()


def test_bad_arguments_raise(wedges):
    w = wedges[0]
    with pytest.raises(TypeError, match="uint16"):
        bcae.sparse_encode(w.astype(np.int32))
    with pytest.raises(bcae.ShapeError):
        bcae.sparse_encode(w[:, :, :8].copy())
    for e in (-0.1, 8.5, float("nan")):
        with pytest.raises(bcae.InvalidArgumentError, match="max_error"):
            bcae.sparse_encode(w, e)
    with pytest.raises(bcae.InvalidArgumentError):
        bcae.sparse_encode(w, 0.1, ratio=10)
    for r in (0, -1, float("nan")):
        with pytest.raises(bcae.InvalidArgumentError):
            bcae.sparse_encode(w, ratio=r)
    with pytest.raises(bcae.InvalidArgumentError):
        bcae.sparse_encode(w, threads=0)
    with pytest.raises(TypeError):
        bcae.sparse_decode([b"x" * 50, 7])
    with pytest.raises(bcae.InvalidArgumentError):
        bcae.sparse_decode(b"", output="png")


def test_damaged_streams_raise(wedges):
    good = bcae.sparse_encode(wedges[0], 0.05)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    for bad, what in ((bytes(flipped), "CRC"), (good[:-1], ""), (good[:20], ""), (b"", ""),
                      (b"BCSP" + good[4:5] + b"\x07" + good[6:], ""), (good + b"\0", "")):
        with pytest.raises(bcae.FormatError, match=what) as exc:
            bcae.sparse_decode(bad)
        assert exc.value.status < 0
    # In a list, the damaged one is named by its index.
    with pytest.raises(bcae.FormatError, match="^stream 2: sparse stream: CRC"):
        bcae.sparse_decode([good, good, bytes(flipped), good])
    with pytest.raises(bcae.Error):
        bcae.sparse_info(b"nope")
    bad_version = bytearray(good)
    bad_version[4] = 9
    with pytest.raises(bcae.UnsupportedError):
        bcae.sparse_decode(bytes(bad_version))


def test_damaged_record_in_a_container(wedges, tmp_path):
    path = tmp_path / "d.bcae"
    bcae.compress(path, wedges[:3], ["a.npy", "b.npy", "c.npy"], codec="sparse", max_error=0.05)
    stream = bcae.sparse_encode(wedges[1], 0.05)
    raw = bytearray(path.read_bytes())
    at = raw.find(stream)
    assert at > 0
    raw[at + len(stream) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    # The container's own record CRC catches it first, as in `bcae decompress`.
    with pytest.raises(bcae.FormatError):
        bcae.decompress(path)


def test_bad_stream_in_an_intact_container_is_named(wedges, tmp_path):
    """A stream the container's CRCs protect but that does not decode (written
    damaged: the writer stores streams as they are) names its record."""
    good = bcae.sparse_encode(wedges[:3], 0.05)
    bad = bytearray(good[1])
    bad[60] ^= 0x20
    path = tmp_path / "b.bcae"
    with bcae.ContainerWriter(path, codec="sparse") as w:
        for name, s in zip(["a.npy", "b.npy", "c.npy"], (good[0], bytes(bad), good[2])):
            w.add(name, s)
    with pytest.raises(bcae.FormatError, match=r'b\.bcae: record 1 \("b\.npy"\): sparse stream: CRC') as e:
        bcae.decompress(path)
    assert e.value.status < 0
    with bcae.Container(path) as c:
        assert np.array_equal(c[2].wedge, bcae.sparse_decode(good[2]))
        with pytest.raises(bcae.FormatError, match="record 1"):
            c[1]
        assert c[-3].name == "a.npy" and c.codes()[1] == bytes(bad)


def test_empty_wedge():
    zero = np.zeros(bcae.WEDGE_SHAPE, np.uint16)
    s, info = bcae.sparse_encode(zero, 0.05, info=True)
    assert len(s) < 60 and info["hits"] == 0
    assert np.array_equal(bcae.sparse_decode(s), zero)


def test_threads_do_not_change_the_bytes(wedges):
    one = bcae.sparse_encode(wedges, 0.02, threads=1)
    assert bcae.sparse_encode(wedges, 0.02, threads=3) == one
    assert np.array_equal(bcae.sparse_decode(one, threads=1), bcae.sparse_decode(one, threads=4))


def test_gil_released_during_sparse_encode(wedges, gil_stall):
    batch = np.concatenate([wedges] * 3)
    longest, span = gil_stall(lambda: bcae.sparse_encode(batch, ratio=30, threads=1))
    assert span > 0.2, "the encode was too short to tell"
    assert longest < span / 2, (longest, span)


def test_docstrings():
    for f in (bcae.sparse_encode, bcae.sparse_decode, bcae.sparse_info):
        assert f.__doc__ and len(f.__doc__) > 100
    assert "sparse" in bcae.ContainerWriter.__doc__ and "sparse" in bcae.Container.__doc__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bcae.SPARSE_MAX_ERROR == 8.0 and bcae.HDF5_FILTER_SPARSE == 2
