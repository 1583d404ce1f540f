"""The Free Spoken Digit Dataset (FSDD) as this recipe sees it.

A copy is a folder with `recordings/{digit}_{speaker}_{take}.wav` (8 kHz mono
16-bit). The download stage records where the copy is in `<data>/fsdd_path`;
later stages read it from there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import stage
from stage import StageError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RECORDING_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9]+)_(?P<take>[0-9]+)\.wav$")
PATH_FILE = "fsdd_path"


class FsddError(StageError):
    """Not a usable FSDD copy."""


@dataclass(frozen=True)
class Recording:
    digit: int
    speaker: str
    take: int
    path: Path

    @property
    def id(self) -> str:
        return self.path.stem  # e.g. "3_theo_7"

    @property
    def word(self) -> str:
        return DIGIT_WORDS[self.digit]


def list_recordings(root: Path) -> list[Recording]:
    """All recordings of the copy at `root`, sorted by id; FsddError if it is not a usable copy.

    Usable: `root/recordings/` exists, its .wav files all follow the naming
    pattern, and every speaker has takes of all ten digits.
    """
    rec_dir = root / "recordings"
    if not rec_dir.is_dir():
        raise FsddError(f"{root} is not an FSDD copy: it has no recordings/ folder")
    recordings, strays = [], []
    for path in sorted(rec_dir.glob("*.wav")):
        match = RECORDING_NAME.match(path.name)
        if match is None:
            strays.append(path.name)
            continue
        recordings.append(Recording(int(match["digit"]), match["speaker"], int(match["take"]), path.resolve()))
    if strays:
        raise FsddError(f"{rec_dir}: {len(strays)} file(s) not named digit_speaker_take.wav, e.g. {strays[0]}")
    if not recordings:
        raise FsddError(f"{rec_dir} holds no recordings")
    digits = defaultdict(set)
    for rec in recordings:
        digits[rec.speaker].add(rec.digit)
    incomplete = sorted(spk for spk, ds in digits.items() if len(ds) < len(DIGIT_WORDS))
    if incomplete:
        raise FsddError(f"{rec_dir}: speaker(s) {', '.join(incomplete)} lack recordings of some digits")
    return recordings


def write_path_file(data_dir: Path, root: Path) -> None:
    stage.write_path_file(data_dir / PATH_FILE, root)


def read_path_file(data_dir: Path) -> Path:
    path_file = data_dir / PATH_FILE
    return stage.read_path_file(path_file, FsddError(f"{path_file} not found: run local/download.py (the download stage) first"))
