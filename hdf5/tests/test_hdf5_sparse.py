"""The filter's sparse mode (cd_values[0] = 2) through h5py, h5dump and h5repack
(ctest `hdf5_filter`).

No model is involved: the wedges read back are those bcae.sparse_decode gives
(every voxel within the bound, the occupancy exact, lossless exact), and a
stored chunk holds the streams `bcae compress --codec sparse` writes.
"""

import os
import struct
import subprocess

import h5py
import numpy as np
import pytest

import bcae

PLUGIN_DIR = os.environ.get("BCAE_HDF5_PLUGIN_DIR", "")
H5DUMP = os.environ.get("BCAE_H5DUMP", "h5dump")
H5REPACK = os.path.join(os.path.dirname(H5DUMP), "h5repack") if os.sep in H5DUMP else "h5repack"
ID = bcae.HDF5_FILTER_ID
SHAPE = bcae.WEDGE_SHAPE
CHUNK = (1,) + SHAPE


def run_cli(*args, cwd=None):
    r = subprocess.run([os.environ["BCAE_CLI"], *map(str, args)], cwd=cwd, capture_output=True,
                       text=True)
    assert r.returncode == 0, f"bcae {args}: {r.stderr}"
    return r


@pytest.fixture(scope="module", autouse=True)
def plugin():
    assert PLUGIN_DIR and bcae.register_hdf5_plugin() == PLUGIN_DIR
    return PLUGIN_DIR


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Four simulated wedges (files from `bcae simulate`), one with values above 1023."""
    root = tmp_path_factory.mktemp("h5sparse")
    run_cli("simulate", "--events", "1", "--seed", "12", "--out", root, "-q")
    rel = [f"outer/12-2_{s}-{side}/sim12_000000.npy" for s, side in ((1, 0), (4, 1), (8, 0))]
    wedges = [np.load(root / r) for r in rel]
    wide = wedges[2].copy()
    rng = np.random.default_rng(3)
    nz = np.flatnonzero(wide)
    wide.flat[nz[::7]] = rng.integers(1024, 65536, size=len(nz[::7]), dtype=np.uint16)
    np.save(root / "wide.npy", wide)
    rel.append("wide.npy")
    wedges.append(wide)
    return {"root": root, "rel": rel, "wedges": np.stack(wedges)}


def within(original, decoded, e):
    assert decoded.dtype == np.uint16 and decoded.shape == original.shape
    assert np.array_equal(decoded != 0, original != 0)
    if e == 0:
        return np.array_equal(decoded, original)
    d = np.abs(np.log2(decoded.astype(np.float64) + 1) - np.log2(original.astype(np.float64) + 1))
    return float(d.max()) <= e + 1e-12


def chunk_streams(raw, n):
    """The streams of a stored sparse chunk, checking its header."""
    magic, kind, count, zero = struct.unpack_from("<4I", raw)
    assert (magic, kind, count, zero) == (0x35484342, 2, n, 0)
    lens = struct.unpack_from(f"<{n}I", raw, 16)
    out, pos = [], 16 + 4 * n
    for ln in lens:
        out.append(bytes(raw[pos:pos + ln]))
        pos += ln
    assert pos == len(raw)
    return out


@pytest.mark.parametrize("e", [0.0, 0.05])
def test_round_trip(sample, tmp_path, e):
    w = sample["wedges"]
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("w", data=w, chunks=CHUNK, **bcae.hdf5_filter(codec="sparse",
                                                                             max_error=e))
        assert d.id.get_storage_size() < w.nbytes / (4 if e else 2)
        # Three wedges in chunks of two: the last chunk is padded with an empty wedge.
        f.create_dataset("odd", data=w[:3], chunks=(2,) + SHAPE,
                         **bcae.hdf5_filter(codec="sparse", max_error=e))
        f.create_dataset("one", data=w[3], chunks=SHAPE,
                         **bcae.hdf5_filter(codec="sparse", max_error=e))
    with h5py.File(path, "r") as f:
        back, odd, one = f["w"][:], f["odd"][:], f["one"][:]
        assert np.array_equal(f["w"][3], back[3])
    assert back.max() > 1023
    for a, b in zip(w, back):
        assert within(a, b, e)
    assert np.array_equal(odd, back[:3]) and np.array_equal(one, back[3])
    # What bcae.sparse_decode gives for the same bound.
    assert np.array_equal(back, bcae.sparse_decode(bcae.sparse_encode(w, e)))


def test_chunks_hold_the_clis_streams(sample, tmp_path):
    root, rel, w = sample["root"], sample["rel"], sample["wedges"]
    run_cli("compress", "-q", "--codec", "sparse", "--max-error", "0.05", "-o",
            tmp_path / "c.bcae", *rel, cwd=root)
    with bcae.Container(tmp_path / "c.bcae", decode=False) as c:
        want = c.codes()
    with h5py.File(tmp_path / "s.h5", "w") as f:
        d = f.create_dataset("w", data=w, chunks=(2,) + SHAPE,
                             **bcae.hdf5_filter(codec="sparse", max_error=0.05))
        _, _, cd, _ = d.id.get_create_plist().get_filter(0)
        assert tuple(cd) == (2, 50000, 0, 2)
        got = []
        for k in range(2):
            _, raw = d.id.read_direct_chunk((2 * k, 0, 0, 0))
            got += chunk_streams(raw, 2)
    assert got == want


def test_ratio_mode(sample, tmp_path):
    w = sample["wedges"][:2]
    opts = bcae.hdf5_filter(codec="sparse", ratio=40)
    assert opts == {"compression": ID, "compression_opts": (2, 0, 40000)}
    with h5py.File(tmp_path / "s.h5", "w") as f:
        d = f.create_dataset("w", data=w, chunks=(2,) + SHAPE, **opts)
        _, raw = d.id.read_direct_chunk((0, 0, 0, 0))
    assert chunk_streams(raw, 2) == bcae.sparse_encode(w, ratio=40)


def test_cd_values_defaults_and_refusals(sample, tmp_path):
    w = sample["wedges"][:1]
    with h5py.File(tmp_path / "s.h5", "w") as f:
        d = f.create_dataset("w", data=w, chunks=CHUNK, compression=ID, compression_opts=(2,))
        assert tuple(d.id.get_create_plist().get_filter(0)[2]) == (2, 0, 0, 1)
        assert np.array_equal(d[:], w)                       # {2} alone: lossless
        assert bcae.hdf5_filter(codec="sparse") == {"compression": ID,
                                                    "compression_opts": (2, 0, 0)}
        # The bound in millionths, never above the one asked for.
        assert bcae.hdf5_filter(codec="sparse", max_error=0.0500004)["compression_opts"][1] == 50000
        assert bcae.hdf5_filter(codec="sparse", max_error=0.57)["compression_opts"][1] == 570000
        for k, opts in enumerate([(2, 8_000_001), (2, 1000, 40000), (2, 0, 0, 1, 5), (3,),
                                  (2, 0, 0, 1) + (0,) * 7]):
            with pytest.raises((ValueError, OSError, RuntimeError)):
                f.create_dataset(f"bad{k}", shape=CHUNK, dtype="u2", chunks=CHUNK,
                                 compression=ID, compression_opts=opts)
            assert f"bad{k}" not in f
        # As in the model's mode: uint16 whole wedges only.
        with pytest.raises((ValueError, OSError, RuntimeError)):
            f.create_dataset("f4", shape=CHUNK, dtype="f4", chunks=CHUNK,
                             **bcae.hdf5_filter(codec="sparse"))
        with pytest.raises((ValueError, OSError, RuntimeError)):
            f.create_dataset("cut", shape=CHUNK, dtype="u2", chunks=(1, 96, 249, 16),
                             **bcae.hdf5_filter(codec="sparse"))
    for kw in ({"max_error": 9}, {"max_error": -1}, {"max_error": 0.1, "ratio": 4},
               {"ratio": 0}, {"precision": "int8"}):
        with pytest.raises(bcae.InvalidArgumentError):
            bcae.hdf5_filter(codec="sparse", **kw)
    with pytest.raises(bcae.InvalidArgumentError):
        bcae.hdf5_filter(max_error=0.1)
    with pytest.raises(bcae.InvalidArgumentError):
        bcae.hdf5_filter(codec="zfp")


def test_no_model_needed(sample, tmp_path, monkeypatch):
    """A missing model does not matter to the sparse mode (and still does to the model's)."""
    monkeypatch.setenv("BCAE_MODEL", str(tmp_path / "missing.safetensors"))
    w = sample["wedges"][:2]
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("w", data=w, chunks=CHUNK, **bcae.hdf5_filter(codec="sparse"))
        with pytest.raises((ValueError, OSError, RuntimeError)):
            f.create_dataset("m", data=w, chunks=CHUNK, compression=ID)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert np.array_equal(f["w"][:], w)


def test_both_modes_in_one_file(sample, tmp_path):
    w = sample["wedges"][:2]
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.create_dataset("model", data=w, chunks=CHUNK, **bcae.hdf5_filter())
        f.create_dataset("sparse", data=w, chunks=CHUNK, **bcae.hdf5_filter(codec="sparse"))
    model = bcae.Model()
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert np.array_equal(f["sparse"][:], w)
        assert np.array_equal(f["model"][:], model.decode(model.encode(w)))
        assert len(f["model"].id.get_create_plist().get_filter(0)[2]) == 11


def test_damaged_chunks_are_errors(sample, tmp_path):
    w = sample["wedges"][:3]
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("w", data=w, chunks=CHUNK,
                             **bcae.hdf5_filter(codec="sparse", max_error=0.05))
        _, raw = d.id.read_direct_chunk((0, 0, 0, 0))
        bad = bytearray(raw)
        bad[len(raw) // 2] ^= 0x04                            # inside the stream
        d.id.write_direct_chunk((0, 0, 0, 0), bytes(bad))
        _, raw1 = d.id.read_direct_chunk((1, 0, 0, 0))
        d.id.write_direct_chunk((1, 0, 0, 0), raw1[:-3])      # lengths no longer add up
        _, raw2 = d.id.read_direct_chunk((2, 0, 0, 0))
        bad2 = bytearray(raw2)
        bad2[4] = 1                                           # a model's chunk, it claims
        d.id.write_direct_chunk((2, 0, 0, 0), bytes(bad2))
    with h5py.File(path, "r") as f:
        for k, why in ((0, "CRC"), (1, "do not add up"), (2, "not a sparse chunk")):
            with pytest.raises(OSError, match=why):
                f["w"][k]


def _env():
    env = dict(os.environ)
    env["HDF5_PLUGIN_PATH"] = PLUGIN_DIR
    return env


def test_h5dump_reads_it(sample, tmp_path):
    path = tmp_path / "s.h5"
    w = sample["wedges"][3]
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=w[None], chunks=CHUNK,
                         **bcae.hdf5_filter(codec="sparse", max_error=0.05))
    with h5py.File(path, "r") as f:
        back = f["w"][0]
    a, z = (int(v) for v in np.argwhere(back > 1023)[0][:2])
    r = subprocess.run([H5DUMP, "-d", "/w", "-s", f"0,{a},{z},0", "-c", "1,1,1,16", str(path)],
                       env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = r.stdout[r.stdout.index("DATA {"):]
    got = [int(t) for line in data.splitlines()[1:] for t in
           line.split(":", 1)[-1].replace(",", " ").split() if t.isdigit()]
    assert got == back[a, z, :].tolist() and max(got) > 1023
    # The header: the filter's name and its four parameters.
    r = subprocess.run([H5DUMP, "-p", "-H", "-d", "/w", str(path)], env=_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "sparse codec" in r.stdout and "2 50000 0 1" in " ".join(r.stdout.split())


def test_h5repack_applies_and_removes_it(sample, tmp_path):
    w = sample["wedges"]
    plain, packed, unpacked = tmp_path / "plain.h5", tmp_path / "packed.h5", tmp_path / "un.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("w", data=w)
    r = subprocess.run([H5REPACK, "-l", "w:CHUNK=1x192x249x16", "-f", f"w:UD={ID},0,3,2,20000,0",
                        str(plain), str(packed)], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with h5py.File(packed, "r") as f:
        d = f["w"]
        assert tuple(d.id.get_create_plist().get_filter(0)[2]) == (2, 20000, 0, 1)
        assert d.id.get_storage_size() < w.nbytes / 4
        back = d[:]
        _, raw = d.id.read_direct_chunk((1, 0, 0, 0))
    assert chunk_streams(raw, 1) == [bcae.sparse_encode(w[1], 0.02)]
    for a, b in zip(w, back):
        assert within(a, b, 0.02)
    r = subprocess.run([H5REPACK, "-f", "w:NONE", str(packed), str(unpacked)], env=_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with h5py.File(unpacked, "r") as f:
        assert np.array_equal(f["w"][:], back)
        assert f["w"].id.get_create_plist().get_nfilters() == 0
