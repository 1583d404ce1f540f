"""Shared test fixtures: real audio from the Free Spoken Digit Dataset beside the repo."""

from pathlib import Path

import pytest
from live_server import LiveServer

FSDD_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd"


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    """Folder holding `recordings/{digit}_{speaker}_{index}.wav` (8 kHz mono)."""
    assert (FSDD_DIR / "recordings").is_dir(), f"FSDD not found at {FSDD_DIR}"
    return FSDD_DIR


@pytest.fixture(scope="session")
def wav_path(fsdd_dir: Path) -> Path:
    """One real recording: the digit 3 spoken by speaker theo (8 kHz mono 16-bit, ~0.24 s)."""
    return fsdd_dir / "recordings" / "3_theo_7.wav"


@pytest.fixture(scope="session")
def live_server():
    """The real service with the shipped model, under uvicorn on a free loopback port."""
    with LiveServer() as server:
        yield server
