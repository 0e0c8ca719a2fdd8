"""bcae.Container and bcae.ContainerWriter against `bcae compress / decompress`."""

import os
import sys
import warnings

import numpy as np
import pytest

import bcae

sys.path.insert(0, os.path.join(os.environ["BCAE_SOURCE_DIR"], "tests"))
import safetensors_edit  # noqa: E402


def test_writer_equals_cli_byte_for_byte(model, wedges, wedge_files, cli_container, tmp_path):
    out = tmp_path / "py.bcae"
    with bcae.ContainerWriter(out, model) as w:
        w.write(wedge_files, wedges)
    assert out.read_bytes() == cli_container.read_bytes()
    assert w.stats["records"] == 6 and w.stats["file_bytes"] == out.stat().st_size


def test_compress_helper_with_zstd_equals_cli(model, sample, wedges, wedge_files, cli, tmp_path):
    cli("compress", "-q", "--zstd", "3", "-o", tmp_path / "cli.bcae", *wedge_files, cwd=sample)
    stats = bcae.compress(tmp_path / "py.bcae", wedges, wedge_files, model=model, zstd=3)
    assert (tmp_path / "py.bcae").read_bytes() == (tmp_path / "cli.bcae").read_bytes()
    assert stats["new_records"] == 6


def test_append_equals_cli(model, sample, wedges, wedge_files, cli, tmp_path):
    cli("compress", "-q", "-o", tmp_path / "cli.bcae", *wedge_files[:2], cwd=sample)
    cli("compress", "-q", "--append", "-o", tmp_path / "cli.bcae", *wedge_files[2:4], cwd=sample)
    with bcae.ContainerWriter(tmp_path / "py.bcae", model) as w:
        w.write(wedge_files[:2], wedges[:2])
    with bcae.ContainerWriter(tmp_path / "py.bcae", model, append=True) as w:
        w.write(wedge_files[2:4], wedges[2:4])
    assert (tmp_path / "py.bcae").read_bytes() == (tmp_path / "cli.bcae").read_bytes()


def test_iteration_equals_cli_decompress(model, wedge_files, cli_container, cli, tmp_path):
    cli("decompress", "-q", "-o", tmp_path / "out", cli_container)
    with bcae.Container(cli_container, model) as c:
        records = list(c)
    assert [r.name for r in records] == wedge_files
    assert [r.index for r in records] == list(range(6))
    for r in records:
        assert r.shape == bcae.WEDGE_SHAPE and r.code.shape == model.code_shape
        assert r.wedge.dtype == np.uint16
        assert np.array_equal(r.wedge, np.load(tmp_path / "out" / r.name)), r.name


def test_log_output_equals_cli(model, cli_container, cli, tmp_path):
    cli("decompress", "-q", "--output", "log", "-o", tmp_path / "out", cli_container)
    names, log = bcae.decompress(cli_container, model=model, output="log")
    assert log.dtype == np.float32 and log.shape == (6,) + bcae.WEDGE_SHAPE
    for name, w in zip(names, log):
        assert np.array_equal(w, np.load(tmp_path / "out" / name))


def test_random_access(model, cli_container):
    with bcae.Container(cli_container, model) as c:
        seq = list(c)
        assert len(c) == 6
        assert c.names() == [r.name for r in seq]
        for i in (3, 0, 5, -1, -6):
            r = c[i]
            want = seq[i]
            assert r.index == want.index and r.name == want.name
            assert np.array_equal(r.code.view(np.uint16), want.code.view(np.uint16))
            assert np.array_equal(r.wedge, want.wedge)
        for i in (6, -7):
            with pytest.raises(IndexError):
                c[i]


def test_codes_only_needs_no_model(cli_container, tmp_path):
    # decode=False never loads a model, so a missing one does not matter.
    c = bcae.Container(cli_container, decode=False)
    assert c._model is None
    rec = c[1]
    assert rec.wedge is None and rec.code.dtype == np.float16
    assert c._model is None
    c.close()


def test_closed_container_raises(cli_container):
    with bcae.Container(cli_container, decode=False) as c:
        pass
    with pytest.raises(ValueError, match="closed"):
        c[0]


def test_missing_and_foreign_files_raise(tmp_path, sample, wedge_files):
    with pytest.raises(bcae.FileError) as e:
        bcae.Container(tmp_path / "none.bcae")
    assert isinstance(e.value, OSError) and "none.bcae" in str(e.value)
    # A .npy is not a container.
    with pytest.raises(bcae.FormatError):
        bcae.Container(sample / wedge_files[0])


def test_truncated_container_raises(model, cli_container, tmp_path):
    cut = tmp_path / "cut.bcae"
    data = cli_container.read_bytes()
    cut.write_bytes(data[:-16])  # no end marker: every record intact, file incomplete
    with bcae.Container(cut, model) as c:
        it = iter(c)
        with pytest.raises(bcae.FormatError, match="(?i)truncated|end marker|incomplete"):
            for _ in it:
                pass
        with pytest.raises(bcae.FormatError):
            len(c)


def test_corrupted_record_raises(model, cli_container, tmp_path):
    bad = tmp_path / "bad.bcae"
    data = bytearray(cli_container.read_bytes())
    data[len(data) // 2] ^= 0x40  # inside some record's code
    bad.write_bytes(bytes(data))
    with pytest.raises(bcae.FormatError, match="CRC"):
        bcae.decompress(bad, model=model)


def _other_model(tmp_path):
    """The default weights with one tensor value changed: another fingerprint,
    the same architecture and code shape (tests/safetensors_edit.py)."""
    return bcae.Model(safetensors_edit.other_model(os.environ["BCAE_MODEL"],
                                                   tmp_path / "other.safetensors"))


def test_other_model_is_refused_unless_forced(model, cli_container, tmp_path):
    other = _other_model(tmp_path)
    assert other.fingerprint != model.fingerprint and other.code_shape == model.code_shape
    with pytest.raises(bcae.UnsupportedError) as e:
        list(bcae.Container(cli_container, other))
    assert model.fingerprint in str(e.value) and other.fingerprint in str(e.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names, w = bcae.decompress(cli_container, model=other, force=True)
    assert len(names) == 6 and w.shape == (6,) + bcae.WEDGE_SHAPE
    assert any(model.fingerprint in str(x.message) for x in caught)
    # Appending with another model is refused too.
    with pytest.raises(bcae.UnsupportedError):
        bcae.ContainerWriter(cli_container, other, append=True)


def test_writer_abort_leaves_no_file(model, wedges, tmp_path):
    out = tmp_path / "a.bcae"
    with pytest.raises(RuntimeError):
        with bcae.ContainerWriter(out, model) as w:
            w.write("a.npy", wedges[0])
            raise RuntimeError("stop")
    assert not out.exists()
    assert os.listdir(tmp_path) == [], "temporary files left behind"


def test_writer_abort_keeps_old_file(model, wedges, tmp_path):
    out = tmp_path / "a.bcae"
    bcae.compress(out, wedges[:1], ["old.npy"], model=model)
    old = out.read_bytes()
    with pytest.raises(RuntimeError):
        with bcae.ContainerWriter(out, model) as w:
            w.write("new.npy", wedges[1])
            raise RuntimeError("stop")
    assert out.read_bytes() == old
    with pytest.raises(RuntimeError):
        with bcae.ContainerWriter(out, model, append=True) as w:
            w.write("new.npy", wedges[1])
            raise RuntimeError("stop")
    assert out.read_bytes() == old


def test_writer_errors(model, wedges, tmp_path):
    with bcae.ContainerWriter(tmp_path / "e.bcae", model) as w:
        w.write("a.npy", wedges[0])
        with pytest.raises(bcae.InvalidArgumentError, match="already"):
            w.write("a.npy", wedges[1])
        for bad in ("../up.npy", "/abs.npy", "", "a//b.npy", "x\n.npy"):
            with pytest.raises(bcae.InvalidArgumentError):
                w.add(bad, model.encode(wedges[0]))
        with pytest.raises(TypeError, match="float16"):
            w.add("f32.npy", model.encode(wedges[0]).astype(np.float32))
        with pytest.raises(bcae.ShapeError):
            w.add("short.npy", model.encode(wedges[0])[:-1])
        with pytest.raises(bcae.ShapeError):
            w.write(["one.npy"], wedges[:2])
    # Only the good record was written.
    with bcae.Container(tmp_path / "e.bcae", decode=False) as c:
        assert c.names() == ["a.npy"]
    with pytest.raises(ValueError, match="closed"):
        w.add("late.npy", model.encode(wedges[0]))
    with pytest.raises(bcae.InvalidArgumentError, match="zstd"):
        bcae.ContainerWriter(tmp_path / "z.bcae", model, zstd=23)
    with pytest.raises(bcae.FileError):
        bcae.ContainerWriter(tmp_path / "no" / "dir.bcae", model)
    with pytest.raises(TypeError):
        bcae.ContainerWriter(tmp_path / "m.bcae", "not a model")
    assert not (tmp_path / "z.bcae").exists() and not (tmp_path / "m.bcae").exists()


def test_non_wedge_record_is_not_decoded(model, wedges, tmp_path):
    out = tmp_path / "shape.bcae"
    with bcae.ContainerWriter(out, model) as w:
        w.add("odd.npy", model.encode(wedges[0]), shape=(16, 192, 249))
    with bcae.Container(out, model) as c:
        with pytest.raises(bcae.ShapeError, match="odd.npy"):
            list(c)
        assert c.names() == ["odd.npy"]
