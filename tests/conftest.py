"""Shared test fixtures: real audio from the Free Spoken Digit Dataset, found or fetched by data_source."""

import sys
from pathlib import Path

import pytest
from data_source import find_fsdd, write_archive
from live_server import LiveServer

from asr.datasets import DatasetError


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
    """The real service with the shipped model, under uvicorn on a free loopback port."""
    with LiveServer() as server:
        yield server
