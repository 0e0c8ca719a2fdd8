"""simulate, datasets and metrics against `bcae simulate` and `bcae metrics --json`."""

import json

import numpy as np
import pytest

import bcae


def _cli_event(root, seed, event):
    """The 24 wedge files of one simulated event, in bcae.simulate's order."""
    return np.stack([np.load(root / "outer" / f"12-2_{w // 2}-{w % 2}" / f"sim{seed}_{event:06d}.npy")
                     for w in range(24)])


def test_simulate_equals_cli(sample):
    w = bcae.simulate(events=1, seed=3)
    assert w.dtype == np.uint16 and w.shape == (24,) + bcae.WEDGE_SHAPE
    assert np.array_equal(w, _cli_event(sample, 3, 0))


def test_simulate_knobs_and_first_event_equal_cli(cli, tmp_path):
    cli("simulate", "--events", "1", "--seed", "7", "--first-event", "2", "--set", "pileup_mean=0",
        "--set", "dndeta=300", "--out", tmp_path, "-q")
    w, info = bcae.simulate(events=1, seed=7, first_event=2, pileup_mean=0, dndeta=300, info=True)
    assert np.array_equal(w, _cli_event(tmp_path, 7, 2))
    assert info[0]["event"] == 2 and info[0]["pileup_collisions"] == 0
    assert set(info[0]) == {"event", "primary_tracks", "pileup_collisions", "pileup_tracks",
                            "loopers", "vertex_z_cm"}


def test_simulate_errors():
    with pytest.raises(bcae.InvalidArgumentError, match="no_such_knob"):
        bcae.simulate(no_such_knob=1)
    with pytest.raises(bcae.InvalidArgumentError, match="pileup_mean"):
        bcae.simulate(pileup_mean=-5)
    with pytest.raises(bcae.InvalidArgumentError, match="events"):
        bcae.simulate(events=0)
    with pytest.raises(bcae.InvalidArgumentError, match="threads"):
        bcae.simulate(threads=0)
    with pytest.raises(TypeError):
        bcae.simulate(dndeta="lots")


def test_sim_knobs_equal_cli(cli):
    out = cli("simulate", "--list-knobs").stdout.splitlines()
    listed = {line.split()[0]: float(line.split()[1]) for line in out if line.strip()}
    knobs = bcae.sim_knobs()
    assert set(knobs) == set(listed)
    for name, (default, help_text) in knobs.items():
        assert default == pytest.approx(listed[name], rel=1e-5) and help_text


def test_load_dataset(sample):
    wedges, paths = bcae.load_dataset(sample, "train", limit=5)
    with open(sample / "outer" / "train.txt") as f:
        manifest = [line.strip() for line in f if line.strip()]
    assert paths == manifest[:5]
    assert wedges.shape == (5,) + bcae.WEDGE_SHAPE and wedges.dtype == np.uint16
    for w, p in zip(wedges, paths):
        assert np.array_equal(w, np.load(sample / "outer" / p))
    ds = bcae.Dataset(sample, "train")
    assert len(ds) == len(manifest) and list(ds.paths) == manifest
    assert np.array_equal(ds[-1], np.load(sample / "outer" / manifest[-1]))
    assert np.array_equal(ds.load([2, -1])[0], wedges[2])
    assert sum(1 for _ in ds) == len(manifest)
    with pytest.raises(IndexError):
        ds[len(manifest)]
    with pytest.raises(IndexError):
        ds.load([len(manifest)])


def test_dataset_errors(sample, tmp_path):
    with pytest.raises(bcae.Error):
        bcae.Dataset(tmp_path / "none")
    with pytest.raises(bcae.Error, match="nosuch"):
        bcae.Dataset(sample, "nosuch")
    # A manifest naming a file that is not a wedge fails when it is loaded.
    (tmp_path / "outer").mkdir()
    np.save(tmp_path / "outer" / "bad.npy", np.zeros((3, 4), np.uint16))
    (tmp_path / "outer" / "test.txt").write_text("bad.npy\n")
    ds = bcae.Dataset(tmp_path)
    with pytest.raises(bcae.ShapeError, match="bad.npy"):
        ds[0]


def _cli_metrics(cli, tmp_path, a, b):
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    return json.loads(cli("metrics", tmp_path / "a.npy", tmp_path / "b.npy", "--json").stdout)


def test_metrics_equal_cli_json(model, wedges, cli, tmp_path):
    recon = model.decode(model.encode(wedges[:2]))
    for a, b in ((wedges[0], recon[0]), (wedges[1], wedges[1]),
                 (np.zeros_like(wedges[0]), recon[0])):
        want = _cli_metrics(cli, tmp_path, a, b)
        assert bcae.metrics(a, b) == want
    # An exact copy: psnr is infinite, which the JSON (and so the dict) says as null.
    assert bcae.metrics(wedges[1], wedges[1])["psnr"] is None
    many = bcae.metrics(wedges[:2], recon)
    assert isinstance(many, list) and many[0] == bcae.metrics(wedges[0], recon[0])


def test_metrics_errors(wedges):
    with pytest.raises(bcae.ShapeError):
        bcae.metrics(wedges[:2], wedges[:3])
    with pytest.raises(bcae.ShapeError):
        bcae.metrics(wedges[0], wedges[:1])
    with pytest.raises(TypeError, match="uint16"):
        bcae.metrics(wedges[0].astype(np.float32), wedges[0])
    high = wedges[0].copy()
    high[0, 0, 0] = 2000
    with pytest.raises(bcae.RangeError, match="reconstructed"):
        bcae.metrics(wedges[0], high)
