"""The HDF5 filter plugin libH5Zbcae.so through h5py and h5dump (ctest `hdf5_filter`).

The wedges read back must equal `bcae decompress` of the same wedges, and a
stored chunk must hold the codes `bcae compress` makes; refusals and
mismatches must be HDF5 errors naming the cause, never wrong wedges.
"""

import os
import struct
import subprocess
import sys

import h5py
import numpy as np
import pytest

import bcae

sys.path.insert(0, os.path.join(os.environ["BCAE_SOURCE_DIR"], "tests"))
import safetensors_edit  # noqa: E402

PLUGIN_DIR = os.environ.get("BCAE_HDF5_PLUGIN_DIR", "")
H5DUMP = os.environ.get("BCAE_H5DUMP", "h5dump")
ID = bcae.HDF5_FILTER_ID
CHUNK = (1,) + bcae.WEDGE_SHAPE


def run_cli(*args, cwd=None):
    r = subprocess.run([os.environ["BCAE_CLI"], *map(str, args)], cwd=cwd, capture_output=True,
                       text=True)
    assert r.returncode == 0, f"bcae {args}: {r.stderr}"
    return r


@pytest.fixture(scope="session", autouse=True)
def plugin():
    """h5py finds the plugin the way the package says to (register_hdf5_plugin)."""
    assert PLUGIN_DIR and os.path.isfile(os.path.join(PLUGIN_DIR, "libH5Zbcae.so"))
    assert bcae.hdf5_plugin_dir() == PLUGIN_DIR
    assert bcae.register_hdf5_plugin() == PLUGIN_DIR
    assert h5py.h5z.filter_avail(ID)
    return PLUGIN_DIR


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """Four simulated wedges (files from `bcae simulate`) and their CLI round trip."""
    root = tmp_path_factory.mktemp("h5sample")
    run_cli("simulate", "--events", "1", "--seed", "11", "--out", root, "-q")
    rel = [f"outer/12-2_{s}-{side}/sim11_000000.npy" for s, side in ((0, 0), (3, 1), (7, 0), (11, 1))]
    wedges = np.stack([np.load(root / r) for r in rel])
    run_cli("compress", "-q", "-o", root / "w.bcae", *rel, cwd=root)
    run_cli("decompress", "-q", "-o", root / "restored", root / "w.bcae")
    restored = np.stack([np.load(root / "restored" / r) for r in rel])
    with bcae.Container(root / "w.bcae", decode=False) as c:
        codes = c.codes()
    return {"root": root, "rel": rel, "wedges": wedges, "restored": restored, "codes": codes}


def test_round_trip_equals_cli_decompress(sample, tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("w", data=sample["wedges"], chunks=CHUNK, **bcae.hdf5_filter())
        # Stored as codes: 16-byte header + the fp16 code per chunk, nothing raw.
        model = bcae.Model()
        assert d.id.get_storage_size() == 4 * (16 + 2 * model.code_elements)
    with h5py.File(path, "r") as f:
        back = f["w"][:]
        one = f["w"][2]
    assert back.dtype == np.uint16 and np.array_equal(back, sample["restored"])
    assert np.array_equal(one, sample["restored"][2])


def test_chunk_holds_the_cli_codes(sample, tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=sample["wedges"], chunks=(2,) + bcae.WEDGE_SHAPE,
                         **bcae.hdf5_filter())
    model = bcae.Model()
    with h5py.File(path, "r") as f:
        d = f["w"]
        for k in range(2):
            mask, raw = d.id.read_direct_chunk((2 * k, 0, 0, 0))
            assert mask == 0
            magic, version, n, c = struct.unpack("<4sIII", raw[:16])
            assert (magic, version, n, c) == (b"BCH5", 1, 2, model.code_elements)
            codes = np.frombuffer(raw[16:], "<u2").reshape((2,) + model.code_shape)
            assert np.array_equal(codes, sample["codes"][2 * k:2 * k + 2].view(np.uint16))
        # The filter's parameters: version, precision, fingerprint, wedges per chunk;
        # mandatory (flags 0) whatever h5py asked for.
        fid, flags, cd, name = d.id.get_create_plist().get_filter(0)
        assert fid == ID and flags == 0 and b"bcae" in name
        words = struct.pack(">8I", *cd[2:10]).hex()
        assert cd[0] == 1 and cd[1] == 0 and words == model.fingerprint and cd[10] == 2


def test_default_cd_values_are_filled_in(sample, tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=sample["wedges"][:1], chunks=CHUNK, compression=ID)
    with h5py.File(path, "r") as f:
        _, _, cd, _ = f["w"].id.get_create_plist().get_filter(0)
        assert len(cd) == 11 and struct.pack(">8I", *cd[2:10]).hex() == bcae.Model().fingerprint
        assert np.array_equal(f["w"][:], sample["restored"][:1])


def test_other_layouts(sample, tmp_path):
    path = tmp_path / "w.h5"
    w = sample["wedges"]
    with h5py.File(path, "w") as f:
        f.create_dataset("one", data=w[0], chunks=bcae.WEDGE_SHAPE, **bcae.hdf5_filter())
        f.create_dataset("events", data=w.reshape((2, 2) + bcae.WEDGE_SHAPE),
                         chunks=(1, 2) + bcae.WEDGE_SHAPE, **bcae.hdf5_filter())
        # Three wedges in chunks of two: the last chunk is padded with empty wedges.
        f.create_dataset("odd", data=w[:3], chunks=(2,) + bcae.WEDGE_SHAPE, **bcae.hdf5_filter())
        grow = f.create_dataset("grow", shape=(0,) + bcae.WEDGE_SHAPE, dtype="u2",
                                maxshape=(None,) + bcae.WEDGE_SHAPE, chunks=CHUNK,
                                **bcae.hdf5_filter())
        grow.resize((2,) + bcae.WEDGE_SHAPE)
        grow[:] = w[2:]
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["one"][:], sample["restored"][0])
        assert np.array_equal(f["events"][:].reshape(w.shape), sample["restored"])
        assert np.array_equal(f["odd"][:], sample["restored"][:3])
        assert np.array_equal(f["grow"][:], sample["restored"][2:])


@pytest.mark.parametrize("dtype", ["u1", "i2", ">u2", "f4", "u4"])
def test_other_dtypes_are_refused(dtype, tmp_path):
    with h5py.File(tmp_path / "t.h5", "w") as f:
        with pytest.raises((ValueError, OSError, RuntimeError)):
            f.create_dataset("w", shape=CHUNK, dtype=dtype, chunks=CHUNK, **bcae.hdf5_filter())
        assert "w" not in f


@pytest.mark.parametrize("shape, chunks", [
    ((2, 192, 249, 16), (1, 96, 249, 16)),     # chunks cut wedges
    ((2, 192, 249, 8), (1, 192, 249, 8)),      # not wedges
    ((192 * 249 * 16,), (192 * 249 * 16,)),    # flat
    ((2, 192, 249, 16), (2, 192, 249, 16)),    # fine: the control case
])
def test_chunk_shapes(shape, chunks, tmp_path):
    with h5py.File(tmp_path / "t.h5", "w") as f:
        if chunks[-3:] == bcae.WEDGE_SHAPE:
            f.create_dataset("w", shape=shape, dtype="u2", chunks=chunks, **bcae.hdf5_filter())
        else:
            with pytest.raises((ValueError, OSError, RuntimeError)):
                f.create_dataset("w", shape=shape, dtype="u2", chunks=chunks, **bcae.hdf5_filter())


def test_bad_cd_values_are_refused(tmp_path):
    good = bcae.Model().hdf5_cd_values()
    for opts in ((2,) + good[1:], (1, 7), (1, 0, 5), good + (1, 2)):
        with h5py.File(tmp_path / "t.h5", "w") as f:
            with pytest.raises((ValueError, OSError, RuntimeError)):
                f.create_dataset("w", shape=CHUNK, dtype="u2", chunks=CHUNK, compression=ID,
                                 compression_opts=opts)


def test_out_of_range_write_fails(sample, tmp_path):
    w = sample["wedges"][:1].copy()
    w[0, 1, 2, 3] = 4000
    with h5py.File(tmp_path / "t.h5", "w") as f:
        d = f.create_dataset("w", shape=w.shape, dtype="u2", chunks=CHUNK, **bcae.hdf5_filter())
        with pytest.raises(OSError):
            d[:] = w
    # Nothing was stored raw behind the user's back (the filter is mandatory).
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f["w"].id.get_storage_size() == 0


def _other_model(tmp_path):
    """The default weights with one value changed: another fingerprint, same shapes."""
    return safetensors_edit.other_model(os.environ["BCAE_MODEL"], tmp_path / "other.safetensors")


def test_model_mismatch_is_an_error_not_a_wrong_wedge(sample, tmp_path, monkeypatch):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=sample["wedges"][:2], chunks=CHUNK, **bcae.hdf5_filter())
    default = os.environ["BCAE_MODEL"]
    other = _other_model(tmp_path)
    monkeypatch.setenv("BCAE_MODEL", str(other))
    with h5py.File(path, "r") as f:
        with pytest.raises(OSError) as e:
            f["w"][:]
    # h5py's message is the innermost HDF5 error: the filter's own.
    text = str(e.value)
    assert "bcae filter" in text and "other.safetensors" in text
    assert bcae.Model(default).fingerprint in text and bcae.Model(other).fingerprint in text
    # A missing model is an error too.
    monkeypatch.setenv("BCAE_MODEL", str(tmp_path / "missing.safetensors"))
    with h5py.File(path, "r") as f:
        with pytest.raises(OSError):
            f["w"][0]
    # Mismatches are not cached: the right model reads again at once.
    monkeypatch.setenv("BCAE_MODEL", default)
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["w"][:], sample["restored"][:2])


def test_damaged_chunk_is_an_error(sample, tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("w", data=sample["wedges"][:2], chunks=CHUNK, **bcae.hdf5_filter())
        _, raw = d.id.read_direct_chunk((0, 0, 0, 0))
        d.id.write_direct_chunk((0, 0, 0, 0), raw[:-2])       # one element short
        _, raw1 = d.id.read_direct_chunk((1, 0, 0, 0))
        bad = bytearray(raw1)
        bad[8] = 5                                            # claims 5 wedges
        d.id.write_direct_chunk((1, 0, 0, 0), bytes(bad))
    with h5py.File(path, "r") as f:
        for k in (0, 1):
            with pytest.raises(OSError):
                f["w"][k]


def test_int8_precision_equals_cli(sample, tmp_path):
    root, rel = sample["root"], sample["rel"][:2]
    run_cli("compress", "-q", "--precision", "int8", "-o", tmp_path / "i8.bcae", *rel, cwd=root)
    with bcae.Container(tmp_path / "i8.bcae", decode=False) as c:
        want = c.codes().view(np.uint16)
    with h5py.File(tmp_path / "w.h5", "w") as f:
        d = f.create_dataset("w", data=sample["wedges"][:2], chunks=(2,) + bcae.WEDGE_SHAPE,
                             **bcae.hdf5_filter(precision="int8"))
        _, raw = d.id.read_direct_chunk((0, 0, 0, 0))
        assert d.id.get_create_plist().get_filter(0)[2][1] == 2
    assert np.array_equal(np.frombuffer(raw[16:], "<u2").reshape(want.shape), want)


def _plain_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
    env.update(extra)
    return env


def test_plugin_found_only_through_the_plugin_path(tmp_path):
    code = "import h5py, bcae; print(h5py.h5z.filter_avail(bcae.HDF5_FILTER_ID))"
    empty = tmp_path / "empty"
    empty.mkdir()
    for env, want in ((_plain_env(HDF5_PLUGIN_PATH=PLUGIN_DIR), "True"),
                      (_plain_env(HDF5_PLUGIN_PATH=str(empty)), "False")):
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == want, (want, r.stdout, r.stderr)
    code = ("import h5py, bcae; bcae.register_hdf5_plugin(); "
            "print(h5py.h5z.filter_avail(bcae.HDF5_FILTER_ID))")
    r = subprocess.run([sys.executable, "-c", code], env=_plain_env(HDF5_PLUGIN_PATH=str(empty)),
                       capture_output=True, text=True)
    assert r.stdout.strip() == "True", r.stderr


def _h5dump_values(text):
    """The numbers of h5dump's DATA block (none when it has none)."""
    if "DATA {" not in text:
        return []
    data = text[text.index("DATA {"):]
    data = data[data.index("\n"):data.rindex("}")]
    return [int(tok) for line in data.splitlines()
            for tok in line.split(":", 1)[-1].replace(",", " ").split() if tok.isdigit()]


def test_h5dump_with_and_without_the_plugin(sample, tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=sample["wedges"][:2], chunks=CHUNK, **bcae.hdf5_filter())
    restored = sample["restored"][1]
    # A block with non-zero voxels, so that equality means something.
    nz = np.argwhere(restored > 0)[0]
    a, z = int(nz[0]), int(nz[1])
    args = [H5DUMP, "-d", "/w", "-s", f"1,{a},{z},0", "-c", "1,2,3,16", str(path)]
    r = subprocess.run(args, env=_plain_env(HDF5_PLUGIN_PATH=PLUGIN_DIR), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    got = _h5dump_values(r.stdout)
    want = restored[a:a + 2, z:z + 3, :].ravel().tolist()
    assert got == want and any(want)
    # Without the plugin: h5dump 1.10 exits 0 on a failed subset read, so the
    # whole dataset is asked for; it must fail with a status and say why.
    empty = tmp_path / "empty"
    empty.mkdir()
    whole = [H5DUMP, "--enable-error-stack", "-d", "/w", str(path)]
    r = subprocess.run(whole, env=_plain_env(HDF5_PLUGIN_PATH=str(empty)), capture_output=True,
                       text=True)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "is not registered" in r.stderr and "unable to print data" in r.stderr
    assert not _h5dump_values(r.stdout)
    # With the plugin but another model: the filter's message, no values.
    other = _other_model(tmp_path)
    r = subprocess.run(whole, env=_plain_env(HDF5_PLUGIN_PATH=PLUGIN_DIR, BCAE_MODEL=str(other)),
                       capture_output=True, text=True)
    assert r.returncode == 1 and "bcae filter: the dataset names model" in r.stderr
    assert not _h5dump_values(r.stdout)
