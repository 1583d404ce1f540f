"""Kaldi-style data directories.

Files, one line per utterance, sorted by utterance id:
  wav.scp   "utt-id /absolute/path.wav"
  text      "utt-id three one four"
  utt2spk   "utt-id speaker"           (and spk2utt, its inverse)
  utt2dur   "utt-id seconds"
Two more this recipe writes when every utterance has the information:
  utt2src   "utt-id source ..."        what the audio was made from, in order
                                       (FSDD recording ids, or the espeak-ng settings)
  ctm       "utt-id 1 start dur word"  one line per word, seconds
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from stage import StageError

from asr.kaldi import TableError, read_table

REQUIRED = ("wav.scp", "text", "utt2spk", "utt2dur")


class DataDirError(StageError):
    """A data directory that is malformed, inconsistent or has duplicate ids."""


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds from the start of the utterance
    duration: float


@dataclass(frozen=True)
class Utt:
    id: str
    wav: Path
    text: str
    speaker: str
    duration: float  # seconds
    sources: tuple[str, ...] = ()
    words: tuple[Word, ...] = ()


def _seconds(t: float) -> str:
    return f"{t:.6f}"  # exact for 8 kHz sample counts


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def write_data_dir(out: Path, utts: Sequence[Utt]) -> None:
    """Write `utts` as a data directory (sorted by id); DataDirError on duplicate or unsafe ids."""
    utts = sorted(utts, key=lambda u: u.id)
    check_unique_ids(utts, str(out))
    for u in utts:
        if any(ch.isspace() for ch in u.id + u.speaker + str(u.wav)):
            raise DataDirError(f"{out}: whitespace in the id, speaker or path of utterance {u.id!r}")
    out.mkdir(parents=True, exist_ok=True)
    _write_lines(out / "wav.scp", (f"{u.id} {u.wav}" for u in utts))
    _write_lines(out / "text", (f"{u.id} {u.text}" for u in utts))
    _write_lines(out / "utt2spk", (f"{u.id} {u.speaker}" for u in utts))
    _write_lines(out / "utt2dur", (f"{u.id} {_seconds(u.duration)}" for u in utts))
    spk2utt = defaultdict(list)
    for u in utts:
        spk2utt[u.speaker].append(u.id)
    _write_lines(out / "spk2utt", (f"{spk} {' '.join(ids)}" for spk, ids in sorted(spk2utt.items())))
    if utts and all(u.sources for u in utts):
        _write_lines(out / "utt2src", (f"{u.id} {' '.join(u.sources)}" for u in utts))
    if utts and all(u.words for u in utts):
        _write_lines(
            out / "ctm",
            (f"{u.id} 1 {_seconds(w.start)} {_seconds(w.duration)} {w.word}" for u in utts for w in u.words),
        )


def _read_table(path: Path) -> dict[str, str]:
    """utt-id -> rest of line (asr.kaldi.read_table); DataDirError on a malformed line or a repeated id."""
    try:
        return {key: value for key, (_, value) in read_table(path, need_value=False).items()}
    except TableError as err:
        raise DataDirError(str(err)) from None


def _read_ctm(path: Path) -> dict[str, list[Word]]:
    words: dict[str, list[Word]] = defaultdict(list)
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if len(fields) != 5:
            raise DataDirError(f"{path}:{lineno}: expected 'utt-id channel start dur word', got {line!r}")
        try:
            words[fields[0]].append(Word(fields[4], float(fields[2]), float(fields[3])))
        except ValueError:
            raise DataDirError(f"{path}:{lineno}: start and duration must be numbers, got {line!r}") from None
    return words


def read_data_dir(data_dir: Path) -> list[Utt]:
    """The utterances of a data directory written by write_data_dir (or by Kaldi tools)."""
    missing = [name for name in REQUIRED if not (data_dir / name).is_file()]
    if missing:
        raise DataDirError(f"{data_dir}: missing {', '.join(missing)}")
    wav, text, spk, dur = (_read_table(data_dir / name) for name in REQUIRED)
    for name, table in (("text", text), ("utt2spk", spk), ("utt2dur", dur)):
        if table.keys() != wav.keys():
            odd = sorted(table.keys() ^ wav.keys())
            raise DataDirError(f"{data_dir}: {name} and wav.scp disagree on ids, e.g. {odd[0]}")
    src = _read_table(data_dir / "utt2src") if (data_dir / "utt2src").is_file() else {}
    ctm = _read_ctm(data_dir / "ctm") if (data_dir / "ctm").is_file() else {}
    try:
        durations = {uid: float(dur[uid]) for uid in wav}
    except ValueError as err:
        raise DataDirError(f"{data_dir}/utt2dur: {err}") from None
    def utt(uid: str) -> Utt:
        sources, words = tuple(src.get(uid, "").split()), tuple(ctm.get(uid, ()))
        return Utt(uid, Path(wav[uid]), text[uid], spk[uid], durations[uid], sources, words)

    return [utt(uid) for uid in sorted(wav)]


def check_unique_ids(utts: Sequence[Utt], where: str) -> None:
    counts = Counter(u.id for u in utts)
    dups = sorted(uid for uid, n in counts.items() if n > 1)
    if dups:
        raise DataDirError(f"{where}: {len(dups)} duplicate utterance id(s), e.g. {', '.join(dups[:3])}")


def combine_data_dirs(out: Path, inputs: Sequence[Path]) -> list[Utt]:
    """Write the union of `inputs` to `out`; DataDirError if an utterance id occurs twice."""
    utts = [u for d in inputs for u in read_data_dir(d)]
    check_unique_ids(utts, f"combining {', '.join(map(str, inputs))}")
    write_data_dir(out, utts)
    return utts
