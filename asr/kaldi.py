"""Kaldi tables: one "key value..." line per utterance (wav.scp, text, utt2spk, utt2dur, ...).

The one reader of these files: manifests (asr/data.py), transcripts to score
(asr/evaluate.py) and the recipes' data directories all read them here. The key is
the first whitespace-separated field, the value the rest of the line with outer white
space removed (inner spacing kept). Blank lines are skipped. Lines end at "\n" only
(a transcript may hold other Unicode line separators).
"""

from __future__ import annotations

from pathlib import Path


class TableError(ValueError):
    """A table line that cannot be read; the message names file:line."""


Table = dict[str, tuple[int, str]]  # key -> (line number, value), in file order


def parse_table(text: str, where: str | Path, need_value: bool = True) -> Table:
    """Table text -> {key: (line number, value)}. A key alone has the value "", allowed only
    without `need_value` (a `text` file's empty transcript); a repeated key is an error."""
    table: Table = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        fields = line.split(maxsplit=1)
        if not fields:
            continue
        key, value = fields[0], fields[1].strip() if len(fields) > 1 else ""
        if need_value and not value:
            raise TableError(f"{where}:{lineno}: expected 'utt-id value', got {line.strip()!r}")
        if key in table:
            raise TableError(f"{where}:{lineno}: duplicate utterance id {key!r} (first on line {table[key][0]})")
        table[key] = (lineno, value)
    return table


def read_table(path: str | Path, need_value: bool = True) -> Table:
    """parse_table of a UTF-8 file (a leading byte-order mark is ignored)."""
    return parse_table(Path(path).read_text(encoding="utf-8-sig"), path, need_value)
