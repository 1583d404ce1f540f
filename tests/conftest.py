"""Shared test fixtures (real audio from the Free Spoken Digit Dataset, found or fetched by
data_source; the live service; system programs) and the two test tiers.

`make test-fast` runs `pytest -m "not slow"`: no browser, no training run, no TTS engine, no
live server. `make test` runs everything. Tests are marked `slow` here, from what they use, so
that test files carry no markers:
- a live server: the `live_server` fixture, or a fixture or test whose code starts a LiveServer
  (and a test of the fast tier that starts one anyway fails, so a miss here cannot go unseen);
- a system program (chromium, espeak-ng, flite), asked for through the `system_program` fixture;
- a whole file (SLOW_FILES) or a named test (SLOW_TESTS): training runs of minutes.
"""

import inspect
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from data_source import find_fsdd, write_archive
from live_server import LiveServer

from asr.datasets import DatasetError
from asr.model import PRETRAINED_DIR

# One intra-op thread in this process and in the ones tests start (CLI, training): the tests run
# many small ops, and on a shared, busy CPU a second thread mostly waits (a 2-second decode took
# 15-27 s with 2 threads at load 6 on 2 cores, 1.3 s with one). OMP_NUM_THREADS set by hand wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

SLOW_FILES = {"test_web_page.py": "a real browser against a live server"}
SLOW_TESTS = {  # file -> tests in it
    "test_train.py": {"test_overfits_real_utterances_to_zero_wer", "test_resume_after_kill_is_exact"},
    "test_conformer.py": {"test_conformer_trains_and_round_trips_through_its_model_directory"},
    "test_distributed.py": {"test_two_processes_match_one_with_both_batches_per_step_and_resume_exactly"},
    "test_librispeech_recipe.py": {"test_run_sh_prepares_trains_with_two_processes_decodes_and_scores"},
}
SYSTEM_PACKAGES = {  # program -> Debian package (`make system-deps` installs them all)
    "chromium": "chromium", "chromedriver": "chromium-driver", "espeak-ng": "espeak-ng", "flite": "flite",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        reason = slow_reason(item)
        if reason:
            item.add_marker(pytest.mark.slow(reason=reason))


def slow_reason(item) -> str:
    file = item.path.name
    if file in SLOW_FILES:
        return SLOW_FILES[file]
    name = getattr(item, "originalname", item.name)
    if file in SLOW_TESTS:
        missing = [n for n in SLOW_TESTS[file] if not hasattr(item.module, n)]
        if missing:  # a renamed test would silently join the fast tier
            raise pytest.UsageError(f"conftest.py SLOW_TESTS names {missing} that {file} does not define")
        if name in SLOW_TESTS[file]:
            return "a training run"
    if "system_program" in item.fixturenames:
        return "runs a system program"
    if any("LiveServer(" in source(f) for f in [getattr(item, "function", None), *fixture_functions(item)]):
        return "starts a live server"
    return ""


def fixture_functions(item) -> list:
    """The functions of every fixture the test uses, directly or through other fixtures."""
    info = getattr(item, "_fixtureinfo", None)  # pytest keeps the resolved fixtures only here
    if info is None:
        return []
    return [defs[-1].func for defs in info.name2fixturedefs.values() if defs]


def source(function) -> str:
    try:
        return inspect.getsource(function)
    except (TypeError, OSError):
        return ""


_current_item = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    global _current_item
    _current_item = item


_start_server = LiveServer.__init__


def _start_server_in_the_slow_tier(self, *args, **kwargs):
    """LiveServer.__init__ for the test session: a test the fast tier runs may not start one."""
    if _current_item is not None and _current_item.get_closest_marker("slow") is None:
        raise RuntimeError(
            f"{_current_item.nodeid} starts a live server but is not marked slow: "
            "say how to recognise it in tests/conftest.py (slow_reason)"
        )
    _start_server(self, *args, **kwargs)


LiveServer.__init__ = _start_server_in_the_slow_tier


@pytest.fixture(scope="session")
def system_program():
    """find(name) -> the path of a system program (chromium, chromedriver, espeak-ng, flite).
    A missing one fails the test saying how to install it (never a skip). Tests using this
    fixture are in the slow tier."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            package = SYSTEM_PACKAGES.get(name, name)
            pytest.fail(
                f"{name} not found: run `make system-deps` as root (Debian), or install {package}",
                pytrace=False,
            )
        return path

    return find


@pytest.fixture(scope="session")
def fsdd_dir(pytestconfig) -> Path:
    """Folder holding `recordings/{digit}_{speaker}_{index}.wav` (8 kHz mono), the pinned FSDD content."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:  # shown even under -q and output capture
        if reporter is None or capture is None:
            print(line, file=sys.stderr)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    try:
        data = find_fsdd(log=say)
    except DatasetError as err:
        data, problem = None, str(err)
    if data is None:  # failed outside the except block, so that pytest shows the message alone
        pytest.fail(problem, pytrace=False)
    say(data.origin)
    return data.fsdd


@pytest.fixture(scope="session")
def wav_path(fsdd_dir: Path) -> Path:
    """One real recording: the digit 3 spoken by speaker theo (8 kHz mono 16-bit, ~0.24 s)."""
    return fsdd_dir / "recordings" / "3_theo_7.wav"


@pytest.fixture(scope="session")
def fsdd_archive(tmp_path_factory, fsdd_dir: Path) -> Path:
    """A zip laid out like GitHub's archive of FSDD at the pinned commit, holding the 2,500 pinned recordings."""
    return write_archive(fsdd_dir, tmp_path_factory.mktemp("upstream") / "fsdd.zip")


@pytest.fixture(scope="session")
def live_server():
    """The real service with the shipped digits model alone (whatever else is shipped), under
    uvicorn on a free loopback port."""
    with LiveServer({"ASR_MODELS": "digits"}) as server:
        yield server


@pytest.fixture(scope="session")
def two_model_server(tmp_path_factory):
    """The real service running two models: the shipped digits (the default) and a copy of it
    named `digits-copy`; answers name the model that gave them."""
    copy = shutil.copytree(PRETRAINED_DIR, tmp_path_factory.mktemp("models") / "digits-copy")
    with LiveServer({"ASR_MODELS": f"digits,{copy}"}) as server:
        yield server
