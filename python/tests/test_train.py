"""bcae.train: the same weights as `bcae train`, progress callbacks, errors."""

import numpy as np
import pytest

import bcae

# A tiny BCAE-2D and two steps: seconds, and enough to change every weight.
TINY = dict(m=1, n=1, d=1, batch_size=2, batches_per_epoch=2, validation_batches_per_epoch=0,
            num_epochs=1, seed=5, threads=2)
TINY_CLI = ["--m", "1", "--n", "1", "--d", "1", "--batch-size", "2", "--batches-per-epoch", "2",
            "--validation-batches-per-epoch", "0", "--num-epochs", "1", "--seed", "5",
            "--threads", "2"]


def test_train_equals_cli(sample, cli, tmp_path):
    cli("train", "--data", sample, *TINY_CLI, "--out", tmp_path / "cli.safetensors", "-q")
    seen = []
    bcae.train(sample, tmp_path / "py.safetensors", progress=seen.append, **TINY)
    # Training is bit-identical for the same thread count (docs/TRAINING.md).
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()
    steps = [p for p in seen if not p["validation"]]
    assert [p["step"] for p in steps] == [1, 2]
    assert all(np.isfinite(p["loss"]) and p["epoch"] == 0 for p in steps)
    assert {"loss_seg", "loss_reg", "coef", "lr", "precision", "recall", "mae", "step_seconds",
            "batch", "batches", "epoch_done"} <= set(steps[0])
    # The result is a model the package loads.
    m = bcae.Model(tmp_path / "py.safetensors")
    assert m.arch == "bcae-2d"


def test_progress_exception_ends_the_run(sample, tmp_path):
    """An exception from progress ends the run after that step, with the checkpoint and
    model written, and is raised then; the run resumes from the checkpoint to the weights
    of one uninterrupted run."""
    calls = []

    def progress(p):
        calls.append(p["step"])
        raise KeyError("stop here")

    long = dict(TINY, num_epochs=2)  # 4 steps
    with pytest.raises(KeyError, match="stop here"):
        bcae.train(sample, tmp_path / "x.safetensors", progress=progress, **long)
    assert calls == [1], "the callback must not be called again after raising"
    ckpt = tmp_path / "x.safetensors.ckpt"
    assert ckpt.exists() and (tmp_path / "x.safetensors").exists()
    seen = []
    bcae.train(sample, tmp_path / "x.safetensors", progress=seen.append, resume=str(ckpt), **long)
    assert [p["step"] for p in seen if not p["validation"]] == [2, 3, 4]
    bcae.train(sample, tmp_path / "y.safetensors", **long)
    assert (tmp_path / "x.safetensors").read_bytes() == (tmp_path / "y.safetensors").read_bytes()


def test_ctrl_c_ends_the_run(sample, tmp_path):
    """SIGINT during training (a real signal, as Ctrl-C sends) raises KeyboardInterrupt after
    the step under way, with a checkpoint to resume from."""
    import os
    import signal
    import threading

    steps, timers = [], []

    def progress(p):
        if not p["validation"]:
            steps.append(p["step"])
            if p["step"] == 1:
                # From another thread, a moment later: the signal then arrives while the
                # library runs a step without the GIL, and is seen at that step's end.
                timers.append(threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)))
                timers[0].start()

    try:
        with pytest.raises(KeyboardInterrupt):  # 2,000 steps: it cannot finish first
            bcae.train(sample, tmp_path / "c.safetensors", progress=progress,
                       **dict(TINY, num_epochs=1000))
    finally:
        for t in timers:
            t.join()
    assert steps and steps == list(range(1, len(steps) + 1)), steps
    assert (tmp_path / "c.safetensors.ckpt").exists()


def test_train_errors(sample, tmp_path):
    with pytest.raises(TypeError, match="no_such_option"):
        bcae.train(sample, tmp_path / "o.safetensors", no_such_option=1)
    with pytest.raises(bcae.Error):
        bcae.train(tmp_path / "nodata", tmp_path / "o.safetensors", **TINY)
    with pytest.raises(bcae.InvalidArgumentError, match="tpu"):
        bcae.train(sample, tmp_path / "o.safetensors", device="tpu", **TINY)
    with pytest.raises(bcae.Error):
        bcae.train(sample, tmp_path / "o.safetensors", **dict(TINY, arch="no-such-arch"))
    with pytest.raises(TypeError, match="callable"):
        bcae.train(sample, tmp_path / "o.safetensors", progress=42, **TINY)
    assert not (tmp_path / "o.safetensors").exists()


def test_train_defaults_are_the_librarys():
    d = bcae.train_defaults()
    assert d["arch"] == "bcae-2d" and (d["m"], d["n"], d["d"]) == (4, 8, 3)
    assert d["out"] is None and d["device"] == "auto" and d["precision"] == "fp32"
    assert d["learning_rate"] == pytest.approx(1e-3)
