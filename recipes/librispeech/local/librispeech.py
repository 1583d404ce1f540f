"""LibriSpeech (Panayotov et al., ICASSP 2015; OpenSLR 12): its parts, their pinned archives, and
one part read as it is unpacked:

  LibriSpeech/PART/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac        16 kHz mono FLAC
  LibriSpeech/PART/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt       "SPEAKER-CHAPTER-UTT UPPER CASE TEXT" lines

SPEAKER and CHAPTER are numbers. As in Kaldi's and ESPnet's LibriSpeech recipes, an utterance's
"speaker" in utt2spk is SPEAKER-CHAPTER (a reader's chapter: one recording session), so that every
utterance id begins with its speaker id.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from kaldi_dir import Utt
import stage
from stage import StageError

from asr.audio import AudioError, audio_duration
from asr.datasets import ArchivePin
from asr.kaldi import TableError, read_table
from asr.tokenizer import normalize_text

OPENSLR = "https://www.openslr.org/resources/12"  # a mirror holds the same files under another base URL
# SHA-256 of each part's archive: the values torchaudio pins for its own LibriSpeech download
# (torchaudio/datasets/librispeech.py, _CHECKSUMS, in torchaudio 2.11), for the same OpenSLR files.
ARCHIVE_SHA256 = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}
PARTS = tuple(ARCHIVE_SHA256)
TRAIN_960 = ("train-clean-100", "train-clean-360", "train-other-500")
PATH_FILE = "librispeech_path"  # in the data folder: where the unpacked parts are (stage 0 writes it)
NUMBER = re.compile(r"[0-9]+")


class CorpusError(StageError):
    """Not a usable LibriSpeech copy, or a part of it not laid out as LibriSpeech is."""


def check_parts(parts: Iterable[str]) -> list[str]:
    """The part names, each one of PARTS; CorpusError naming the unknown ones."""
    parts = list(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise CorpusError(f"unknown LibriSpeech part(s) {unknown or '(none given)'}; the parts are {', '.join(PARTS)}")
    return parts


def archive_pin(part: str, base_url: str = OPENSLR) -> ArchivePin:
    return ArchivePin(f"LibriSpeech {part}", f"{base_url.rstrip('/')}/{part}.tar.gz", ARCHIVE_SHA256[part])


def data_dir_name(part: str) -> str:
    """Kaldi's name for a part's data dir: dev-clean -> dev_clean."""
    return part.replace("-", "_")


def find_parts(root: Path, parts: Iterable[str]) -> Path:
    """The folder holding the part folders: `root` itself or `root`/LibriSpeech (the archives' top folder).
    CorpusError naming the parts found in neither."""
    for folder in (root, root / "LibriSpeech"):
        if all((folder / part).is_dir() for part in parts):
            return folder.resolve()
    missing = [p for p in parts if not (root / p).is_dir() and not (root / "LibriSpeech" / p).is_dir()]
    raise CorpusError(f"{root}: no folder {', '.join(missing)} in it or in {root / 'LibriSpeech'} "
                      "(give the folder holding the unpacked parts, e.g. .../LibriSpeech)")


def write_path_file(data: Path, corpus: Path) -> None:
    stage.write_path_file(data / PATH_FILE, corpus)


def read_path_file(data: Path) -> Path:
    path_file = data / PATH_FILE
    return stage.read_path_file(path_file, CorpusError(f"{path_file} not found: run stage 0 (local/download.py) first"))


def read_transcripts(path: Path) -> dict[str, str]:
    """A SPEAKER-CHAPTER.trans.txt file -> {utterance id: normalised text}; CorpusError naming file:line
    for a line without text, a repeated id, or an id that is not SPEAKER-CHAPTER-NUMBER of this file."""
    prefix = path.name.removesuffix(".trans.txt") + "-"
    try:
        table = read_table(path)
    except TableError as err:
        raise CorpusError(str(err)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise CorpusError(f"{path}: cannot read it ({err})") from None
    for utt_id, (lineno, _) in table.items():
        if not (utt_id.startswith(prefix) and NUMBER.fullmatch(utt_id.removeprefix(prefix))):
            raise CorpusError(f"{path}:{lineno}: utterance id {utt_id!r} is not {prefix}NUMBER")
    return {utt_id: normalize_text(text) for utt_id, (_, text) in table.items()}


def _numbered_folders(folder: Path, what: str) -> list[Path]:
    """The sub-folders of `folder` (files beside them are left alone); CorpusError on one not named by a number."""
    subs = sorted(p for p in folder.iterdir() if p.is_dir())
    odd = [p.name for p in subs if not NUMBER.fullmatch(p.name)]
    if odd:
        raise CorpusError(f"{folder}: folder {odd[0]!r} is not a {what} number; a part is laid out as "
                          "PART/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac with SPEAKER-CHAPTER.trans.txt")
    return subs


def chapter_utterances(chapter: Path) -> list[tuple[str, Path, str]]:
    """(utterance id, flac path, text) of one SPEAKER/CHAPTER folder; CorpusError when its transcript file
    is missing or it and the .flac files do not name the same utterances."""
    name = f"{chapter.parent.name}-{chapter.name}"
    trans = chapter / f"{name}.trans.txt"
    if not trans.is_file():
        raise CorpusError(f"{chapter}: no transcript file {trans.name}")
    texts = read_transcripts(trans)
    flacs = {p.stem: p for p in chapter.glob("*.flac")}
    no_text, no_audio = sorted(flacs.keys() - texts.keys()), sorted(texts.keys() - flacs.keys())
    if no_text:
        raise CorpusError(f"{chapter}: {len(no_text)} .flac file(s) not in {trans.name}, e.g. {no_text[0]}.flac")
    if no_audio:
        raise CorpusError(f"{trans}: {len(no_audio)} utterance(s) without a .flac file, e.g. {no_audio[0]}")
    return [(utt_id, flacs[utt_id].resolve(), texts[utt_id]) for utt_id in sorted(texts)]


def part_utterances(corpus: Path, part: str, jobs: int = 8) -> list[Utt]:
    """Every utterance of `corpus`/`part`, with its duration from the FLAC header (read by `jobs` threads:
    hundreds of thousands of small reads, often on a network file system)."""
    root = corpus / part
    if not root.is_dir():
        raise CorpusError(f"{root} not found: stage 0 did not provide {part}")
    found = [(spk.name, chapter, utt) for spk in _numbered_folders(root, "speaker")
             for chapter in _numbered_folders(spk, "chapter") for utt in chapter_utterances(chapter)]
    if not found:
        raise CorpusError(f"{root}: no utterances (expected SPEAKER/CHAPTER/ folders of .flac files)")
    with ThreadPoolExecutor(jobs) as pool:
        durations = list(pool.map(_duration, (path for _, _, (_, path, _) in found)))
    return [Utt(utt_id, path, text, f"{spk}-{chapter.name}", seconds)
            for (spk, chapter, (utt_id, path, text)), seconds in zip(found, durations)]


def _duration(path: Path) -> float:
    try:
        return audio_duration(path)
    except AudioError as err:  # its message begins with the file's name
        raise CorpusError(str(err)) from None
