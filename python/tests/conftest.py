"""Shared fixtures of the Python package's tests (run by ctest `python_package`).

The environment comes from python/CMakeLists.txt: PYTHONPATH (the built
package), BCAE_CLI (the `bcae` binary whose results the package must equal),
BCAE_MODEL (the source tree's default model). A missing piece fails the
tests; nothing is skipped.
"""

import os
import subprocess
import threading
import time

import numpy as np
import pytest

import bcae


def cli_path():
    path = os.environ.get("BCAE_CLI")
    assert path and os.access(path, os.X_OK), "BCAE_CLI must name the bcae binary"
    return path


def run_cli(*args, cwd=None, check=True):
    """Runs `bcae ARGS`; returns the CompletedProcess (text)."""
    r = subprocess.run([cli_path(), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if check:
        assert r.returncode == 0, f"bcae {' '.join(map(str, args))}: {r.stderr}"
    return r


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """One simulated event written by `bcae simulate` (24 wedges, split train)."""
    root = tmp_path_factory.mktemp("sample")
    run_cli("simulate", "--events", "1", "--seed", "3", "--out", root / "data", "-q")
    return root / "data"


@pytest.fixture(scope="session")
def wedge_files(sample):
    """Six wedge files of the sample, as paths relative to the sample folder."""
    with open(sample / "outer" / "train.txt") as f:
        rel = [line.strip() for line in f if line.strip()][:6]
    return ["outer/" + r for r in rel]


@pytest.fixture(scope="session")
def wedges(sample, wedge_files):
    return np.stack([np.load(sample / f) for f in wedge_files])


@pytest.fixture(scope="session")
def model():
    return bcae.Model()


@pytest.fixture(scope="session")
def cli_container(sample, wedge_files, tmp_path_factory):
    """`bcae compress` of the six wedge files (names as given, relative)."""
    out = tmp_path_factory.mktemp("cli") / "six.bcae"
    run_cli("compress", "-q", "-o", out, *wedge_files, cwd=sample)
    return out


@pytest.fixture
def gil_stall():
    """The function below: tests of the GIL's release call it."""
    return _gil_stall


def _gil_stall(call):
    """Runs call() on a worker thread while this thread loops; returns (the longest gap
    between two loop iterations, the call's duration). With the GIL held for the whole
    call, the loop would stall for all of it; released, the longest gap stays a small
    fraction of it. The loop is already running when the worker starts."""
    looping, done = threading.Event(), threading.Event()
    span = {}

    def work():
        looping.wait()
        t0 = time.perf_counter()
        call()
        span["call"] = time.perf_counter() - t0
        done.set()

    t = threading.Thread(target=work)
    t.start()
    longest, last = 0.0, time.perf_counter()
    looping.set()
    while True:
        # Measure before testing `done`: a stall ends when the call returns,
        # and that last gap is the one that tells.
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
        if done.is_set():
            break
    t.join()
    return longest, span["call"]
