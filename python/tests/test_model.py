"""bcae.Model: codes equal `bcae compress`'s bit for bit, wedges equal `bcae
decompress`'s value for value, and every misuse raises."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import bcae


def test_default_model_is_the_clis(model, cli_container):
    # ctest sets BCAE_MODEL: the library's search returns it, and the CLI
    # used the same model (the container's header names it).
    assert bcae.default_model_path() == os.environ["BCAE_MODEL"]
    assert model.path == os.environ["BCAE_MODEL"]
    with bcae.Container(cli_container, decode=False) as c:
        assert c.fingerprint == model.fingerprint
        assert c.arch == model.arch == "bcae-2d"
        assert c.code_shape == model.code_shape


def test_default_model_search_without_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "BCAE_MODEL"}
    code = "import bcae; print(bcae.default_model_path())"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    found = r.stdout.strip()
    assert found.endswith("bcae2d-default.safetensors") and os.path.isfile(found)
    # A named model wins even when missing: an error about it, never a fallback.
    env["BCAE_MODEL"] = str(tmp_path / "missing.safetensors")
    code = "import bcae\ntry:\n bcae.Model()\nexcept bcae.FileError as e:\n print('FileError', e)"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("FileError") and "missing.safetensors" in r.stdout


def test_attributes(model):
    assert model.code_shape == (32, 24, 32)
    assert model.code_elements == 32 * 24 * 32
    assert model.ratio == pytest.approx(192 * 249 * 16 / (32 * 24 * 32))
    assert len(model.fingerprint) == 64 and int(model.fingerprint, 16) >= 0
    assert model.precision == "fp32" and model.device == "auto" and model.batch == 4
    assert model.threads == int(os.environ["BCAE_NUM_THREADS"])
    assert "bcae-2d" in repr(model)


def test_encode_equals_cli_codes(model, wedges, cli_container):
    codes = model.encode(wedges)
    assert codes.dtype == np.float16 and codes.shape == (6,) + model.code_shape
    with bcae.Container(cli_container, decode=False) as c:
        cli_codes = c.codes()
    # Bit for bit: compare the fp16 bit patterns, not values.
    assert np.array_equal(codes.view(np.uint16), cli_codes.view(np.uint16))


def test_single_wedge_and_batch_agree(model, wedges):
    one = model.encode(wedges[2])
    assert one.shape == model.code_shape
    assert np.array_equal(one.view(np.uint16), model.encode(wedges[2:3])[0].view(np.uint16))
    back = model.decode(one)
    assert back.shape == bcae.WEDGE_SHAPE and back.dtype == np.uint16
    empty = model.encode(np.zeros((0,) + bcae.WEDGE_SHAPE, np.uint16))
    assert empty.shape == (0,) + model.code_shape


def test_decode_equals_cli_wedges(model, wedges, wedge_files, cli_container, cli, tmp_path):
    cli("decompress", "-q", "-o", tmp_path / "adc", cli_container)
    cli("decompress", "-q", "--output", "log", "-o", tmp_path / "log", cli_container)
    codes = model.encode(wedges)
    adc = model.decode(codes)
    log = model.decode(codes, output="log")
    assert adc.dtype == np.uint16 and log.dtype == np.float32
    for i, name in enumerate(wedge_files):
        assert np.array_equal(adc[i], np.load(tmp_path / "adc" / name)), name
        assert np.array_equal(log[i], np.load(tmp_path / "log" / name)), name


def test_other_batch_same_codes(wedges, model):
    # Decoding never depends on the batch (the library decodes at a fixed
    # one); a batch-1 model must at least agree with itself and decode alike.
    m1 = bcae.Model(batch=1, threads=1)
    codes = model.encode(wedges[:2])
    assert np.array_equal(m1.decode(codes), model.decode(codes))


@pytest.mark.parametrize("precision", ["int8"])
def test_precision_equals_cli(precision, sample, wedge_files, cli, tmp_path):
    cli("compress", "-q", "--precision", precision, "-o", tmp_path / "p.bcae", *wedge_files[:2],
        cwd=sample)
    m = bcae.Model(precision=precision)
    assert m.precision == precision
    w = np.stack([np.load(sample / f) for f in wedge_files[:2]])
    with bcae.Container(tmp_path / "p.bcae", decode=False) as c:
        want = c.codes()
    assert np.array_equal(m.encode(w).view(np.uint16), want.view(np.uint16))


def test_decoder_precision(model, wedges):
    # bf16 decoders (BCAE-2D's fused chain on AVX-512 CPUs) reconstruct
    # nearly what fp32 does; int8 decoders do not exist.
    with pytest.raises(bcae.Error):
        bcae.Model(decoder_precision="int8")
    try:
        m16 = bcae.Model(decoder_precision="bf16", threads=2)
    except bcae.Error as e:
        pytest.skip(f"no bf16 decoders on this CPU: {e}")
    assert m16.decoder_precision == "bf16" and model.decoder_precision == "fp32"
    codes = model.encode(wedges[:2])
    want = model.decode(codes, output="log")
    got = m16.decode(codes, output="log")
    assert got.shape == want.shape and not np.array_equal(got, want)
    # Values in log2(ADC + 1) (0 or 6..10): nearly every voxel agrees.
    assert np.mean(np.abs(got - want) > 0.25) < 0.02


def test_value_preserving_layouts_accepted(model, wedges):
    want = model.encode(wedges[:1]).view(np.uint16)
    big_endian = wedges[:1].astype(">u2")
    assert np.array_equal(model.encode(big_endian).view(np.uint16), want)
    fortran = np.asfortranarray(wedges[:1])
    assert np.array_equal(model.encode(fortran).view(np.uint16), want)


@pytest.mark.parametrize("bad", [np.int32, np.int64, np.float32, np.float64, np.uint8, np.int16])
def test_wrong_wedge_dtype_is_refused(model, wedges, bad):
    with pytest.raises(TypeError, match="uint16"):
        model.encode(wedges[:1].astype(bad))


def test_non_arrays_are_refused(model, wedges):
    with pytest.raises(TypeError, match="numpy.ndarray"):
        model.encode(wedges[0].tolist())
    with pytest.raises(TypeError):
        model.decode(None)


def test_wrong_code_dtype_is_refused(model, wedges):
    codes = model.encode(wedges[:1])
    for bad in (np.float32, np.float64, np.uint16):
        with pytest.raises(TypeError, match="float16"):
            model.decode(codes.astype(bad))


@pytest.mark.parametrize("shape", [(192, 249), (1, 192, 249, 15), (1, 249, 192, 16),
                                   (2, 1, 192, 249, 16), (192 * 249 * 16,)])
def test_wrong_wedge_shape_raises(model, shape):
    with pytest.raises(bcae.ShapeError, match=r"\(192, 249, 16\)") as e:
        model.encode(np.zeros(shape, np.uint16))
    assert isinstance(e.value, ValueError) and e.value.status == -6


def test_wrong_code_shape_raises(model):
    with pytest.raises(bcae.ShapeError, match="code"):
        model.decode(np.zeros((1, 32, 24, 31), np.float16))
    with pytest.raises(bcae.ShapeError):
        model.decode(np.zeros((32 * 24 * 32,), np.float16))


def test_out_of_range_adc_raises(model, wedges):
    w = wedges[:1].copy()
    w[0, 5, 6, 7] = 1024
    with pytest.raises(bcae.RangeError) as e:
        model.encode(w)
    assert e.value.status == -7 and "1024" in str(e.value)


def test_non_finite_code_raises(model, wedges):
    codes = model.encode(wedges[:1])
    codes[0, 1, 2, 3] = np.inf
    with pytest.raises(bcae.FormatError, match="non-finite"):
        model.decode(codes)


@pytest.mark.parametrize("kwargs, match", [
    ({"precision": "fp64"}, "precision"),
    ({"device": "tpu"}, "tpu"),
    ({"batch": 0}, "batch"),
    ({"batch": 65}, "batch"),
    ({"threads": 0}, "threads"),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(bcae.InvalidArgumentError, match=match):
        bcae.Model(**kwargs)


def test_bad_output_kind_raises(model, wedges):
    with pytest.raises(bcae.InvalidArgumentError, match="output"):
        model.decode(model.encode(wedges[:1]), output="raw")


def test_cuda_without_backend_raises():
    # This build has no CUDA backend (docs/CUDA.md): asking for it is an error.
    with pytest.raises(bcae.Error, match="(?i)cuda"):
        bcae.Model(device="cuda")


def test_bad_model_files_raise(tmp_path):
    with pytest.raises(bcae.FileError) as e:
        bcae.Model(tmp_path / "nope.safetensors")
    assert isinstance(e.value, OSError) and "nope.safetensors" in str(e.value)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(bcae.FormatError):
        bcae.Model(junk)


def test_bad_threads_environment_raises(tmp_path):
    env = dict(os.environ, BCAE_NUM_THREADS="many")
    code = "import bcae\ntry:\n bcae.Model()\nexcept ValueError as e:\n print('ValueError', e)"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.stdout.startswith("ValueError") and "BCAE_NUM_THREADS" in r.stdout, r.stderr


def test_exception_hierarchy():
    assert issubclass(bcae.FileError, OSError) and issubclass(bcae.FileError, bcae.Error)
    assert issubclass(bcae.OutOfMemoryError, MemoryError)
    for cls in (bcae.InvalidArgumentError, bcae.FormatError, bcae.ShapeError, bcae.RangeError):
        assert issubclass(cls, ValueError) and issubclass(cls, bcae.Error)
    assert bcae.Error.__module__ == "bcae"


def test_gil_released_during_encode(model, wedges, gil_stall):
    """Another Python thread keeps running while encode computes.

    The main thread is already looping when the worker starts encoding. With
    the GIL held for the whole call, the loop would stall for the call's
    duration; released, its longest pause stays a small fraction of it.
    """
    # Long enough to tell a stall from scheduling noise on any CPU: grow the
    # batch until one encode takes a few tenths of a second. On a loaded
    # machine the sizing run can take longer than the measured one, so a
    # measured encode that came out too short is redone with a larger batch.
    reps = 2
    while True:
        batch = np.concatenate([wedges] * reps)
        t0 = time.perf_counter()
        model.encode(batch)
        if time.perf_counter() - t0 > 0.4 or reps >= 64:
            break
        reps *= 2
    for _ in range(3):
        longest, span = gil_stall(lambda: model.encode(batch))
        if span > 0.2 or len(batch) >= 384:  # 384 wedges: 0.6 GB, enough on any CPU
            break
        batch = np.concatenate([batch, batch])
    assert span > 0.2, "the encode was too short to tell"
    assert longest < span / 2, (longest, span)


def test_threads_share_a_model(model, wedges):
    """Calls from several threads are serialised on the model's codec: each
    thread gets the codes a lone call gives."""
    want = model.encode(wedges[:2]).view(np.uint16)
    results = [None] * 3

    def work(i):
        results[i] = model.encode(wedges[:2]).view(np.uint16)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert np.array_equal(r, want)


def test_docstrings_everywhere():
    import inspect
    missing = []
    for name in bcae.__all__:
        obj = getattr(bcae, name)
        if inspect.isclass(obj) or callable(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
            for attr, member in vars(obj).items() if inspect.isclass(obj) else ():
                if attr.startswith("_") or not (callable(member) or isinstance(member, property)
                                                or type(member).__name__ == "getset_descriptor"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert not missing, missing
    # The C functions carry text signatures, so help() and inspect show them.
    for f in (bcae.Model.encode, bcae.Model.decode, bcae.metrics, bcae.default_model_path,
              bcae._bcae.simulate, bcae._bcae.train, bcae.Dataset.load):
        assert inspect.signature(f) is not None
    assert "precision" in str(inspect.signature(bcae.Model))
