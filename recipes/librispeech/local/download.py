#!/usr/bin/env python3
"""Stage 0 "download": fetch and unpack the LibriSpeech parts asked for, or find them in a local copy,
and record where they are.

  local/download.py --parts dev-clean test-clean                 # from OpenSLR into downloads/
  local/download.py --parts dev-clean --mirror https://HOST/resources/12
  local/download.py --parts dev-clean --local /corpora/LibriSpeech   # an unpacked copy (offline machines)

Each archive (PART.tar.gz) is downloaded into downloads/, resuming after an interruption, and
checked against its SHA-256 (librispeech.ARCHIVE_SHA256) before it is unpacked; an archive that
differs is deleted and refused. A part is unpacked beside the others into downloads/LibriSpeech/PART
by one rename, so a folder there is always complete. Writes <data>/librispeech_path (the folder
holding the parts), then the marker <data>/.download.done; a re-run with the same options does nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from librispeech import OPENSLR, PATH_FILE, CorpusError, archive_pin, check_parts, find_parts, write_path_file
from stage import add_force_arg, begin, mark_done, run_main

from asr.datasets import DatasetError, fetch_archive, unpacked_tar


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--parts", nargs="+", required=True, help="LibriSpeech parts, e.g. train-clean-100 dev-clean")
    parser.add_argument("--local", type=Path, help="an unpacked copy: the folder holding the parts (or its parent)")
    parser.add_argument("--mirror", default=OPENSLR, help=f"base URL of the archives (default: {OPENSLR})")
    parser.add_argument("--downloads", type=Path, default=Path("downloads"),
                        help="where archives are downloaded and unpacked (default: downloads)")
    parser.add_argument("--remove-archives", action="store_true", help="delete each archive once it is unpacked")
    add_force_arg(parser)
    return parser.parse_args(argv)


def unpack(archive: Path, part: str, downloads: Path) -> Path:
    """downloads/LibriSpeech/PART from the part's verified archive, moved into place by one rename (with
    the corpus' top-level README/SPEAKERS/CHAPTERS/BOOKS/LICENSE .TXT files, once)."""
    corpus = downloads / "LibriSpeech"
    target = corpus / part
    if target.is_dir():
        return target
    corpus.mkdir(parents=True, exist_ok=True)
    print(f"unpacking {archive}")
    try:
        with unpacked_tar(archive, downloads) as tmp:
            unpacked = tmp / "LibriSpeech"
            if not (unpacked / part).is_dir():
                raise CorpusError(f"{archive} holds no LibriSpeech/{part}/ folder")
            for doc in unpacked.glob("*.TXT"):
                if not (corpus / doc.name).exists():
                    os.replace(doc, corpus / doc.name)
            os.replace(unpacked / part, target)
    except DatasetError as err:
        raise CorpusError(str(err)) from None
    return target


def download(parts: list[str], args: argparse.Namespace) -> Path:
    for part in parts:
        archive = args.downloads / f"{part}.tar.gz"
        if (args.downloads / "LibriSpeech" / part).is_dir():
            continue
        pin = archive_pin(part, args.mirror)
        try:
            fetch_archive(pin, archive, pin.url)
        except DatasetError as err:
            raise CorpusError(f"{err}. Without internet access, copy LibriSpeech to this machine and "
                              "give --local DIR") from None
        unpack(archive, part, args.downloads)
        if args.remove_archives:
            archive.unlink()
    return (args.downloads / "LibriSpeech").resolve()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    parts = check_parts(args.parts)
    params = {"parts": parts, "local": str(args.local.resolve()) if args.local else None}
    marker, path_file = args.data / ".download.done", args.data / PATH_FILE
    if not begin(marker, params, args.force, outputs=[path_file]):
        return
    corpus = find_parts(args.local, parts) if args.local else download(parts, args)
    write_path_file(args.data, corpus)
    mark_done(marker, params)
    print(f"LibriSpeech {', '.join(parts)} in {corpus} -> {path_file}")


if __name__ == "__main__":
    sys.exit(run_main(main))
