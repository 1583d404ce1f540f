#!/usr/bin/env python3
"""Stage 0 for a machine with the internet: fetch speechocean762 from OpenSLR (resource 101), check it,
unpack it, and print the folder that local/prepare.py --local then reads.

  local/download.py --sha256 HEX                               # from OpenSLR into downloads/
  local/download.py --sha256 HEX --mirror https://HOST/resources/101

The archive (speechocean762.tar.gz, about 520 MB) is downloaded into downloads/, resuming after an
interruption, and checked against a SHA-256 before anything in it is unpacked; an archive that
differs is deleted and refused. Its speechocean762/ folder (WAVE/, train/, test/, resource/) is
moved to downloads/speechocean762 by one rename, so the folder there is always complete.

Which SHA-256: OpenSLR publishes none for this archive, and the machines this recipe was written on
cannot reach it, so no digest is pinned here yet (SHA256 below is empty). Give the digest of a copy
you trust (`sha256sum speechocean762.tar.gz` of one you fetched and checked yourself); the recipe
never unpacks bytes it could not check against one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from stage import StageError, run_main

from asr.datasets import ArchivePin, DatasetError, fetch_archive, unpacked_tar

OPENSLR = "https://www.openslr.org/resources/101"
ARCHIVE = "speechocean762.tar.gz"
FOLDER = "speechocean762"  # the archive's top folder
SHA256 = ""  # of ARCHIVE as OpenSLR serves it; empty until a verified copy's digest is recorded


class DownloadError(StageError):
    """The corpus could not be fetched, checked or unpacked; the message says what to do."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--downloads", type=Path, default=Path("downloads"),
                        help="where the archive is downloaded and unpacked (default: downloads)")
    parser.add_argument("--mirror", default=OPENSLR, help=f"base URL of the archive (default: {OPENSLR})")
    parser.add_argument("--sha256", default=SHA256, help="SHA-256 of the archive (required: none is pinned yet)")
    parser.add_argument("--remove-archive", action="store_true", help="delete the archive once it is unpacked")
    return parser.parse_args(argv)


def unpack(archive: Path, downloads: Path) -> Path:
    """downloads/speechocean762 from the verified archive, moved into place by one rename."""
    target = downloads / FOLDER
    if target.is_dir():
        return target
    print(f"unpacking {archive}", file=sys.stderr)  # stdout carries only the corpus folder, for run.sh
    try:
        with unpacked_tar(archive, downloads) as tmp:
            unpacked = tmp / FOLDER
            missing = [part for part in ("WAVE", "train", "test") if not (unpacked / part).is_dir()]
            if missing:
                raise DownloadError(f"{archive} holds no {FOLDER}/{missing[0]}/ folder: not the speechocean762 archive")
            os.replace(unpacked, target)
    except DatasetError as err:
        raise DownloadError(str(err)) from None
    return target


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    target = args.downloads / FOLDER
    if not target.is_dir():
        if not args.sha256:
            raise DownloadError("no SHA-256 of speechocean762.tar.gz is pinned in this recipe: give --sha256 HEX "
                                "of a copy you trust, or --local DIR with a copy already on this machine")
        archive = args.downloads / ARCHIVE
        pin = ArchivePin("speechocean762", f"{args.mirror.rstrip('/')}/{ARCHIVE}", args.sha256.lower())
        try:
            fetch_archive(pin, archive, pin.url, log=lambda line: print(line, file=sys.stderr))
        except DatasetError as err:
            raise DownloadError(f"{err}. Without internet access, copy the corpus to this machine and give --local DIR") from None
        unpack(archive, args.downloads)
        if args.remove_archive:
            archive.unlink()
    print(target.resolve())


if __name__ == "__main__":
    sys.exit(run_main(main))
