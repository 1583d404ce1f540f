#!/usr/bin/env python3
"""Stage "download": find or fetch the Free Spoken Digit Dataset and record where it is.

  local/download.py --local /path/to/fsdd     # use an existing copy (offline machines)
  local/download.py                           # fetch FSDD at the pinned commit from GitHub

A download is checked by content (asr.datasets.FSDD: the SHA-256 of the 2,500 recordings of
george, jackson, nicolas, theo and yweweler, which are what it keeps) and refused if it
differs; the tests fetch their copy with the same code. Writes <data>/fsdd_path (the absolute
path of the copy), then the marker <data>/.download.done; a re-run with the same options does
nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from fsdd import PATH_FILE, FsddError, list_recordings, write_path_file
from stage import add_force_arg, begin, mark_done, run_main

from asr.datasets import FSDD, DatasetError, fetch


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument(
        "--local", type=Path, help="use this existing FSDD copy (a folder with recordings/) instead of downloading"
    )
    parser.add_argument(
        "--url", default=FSDD.url, help=f"archive to download, a mirror of FSDD {FSDD.revision[:12]} (default: GitHub)"
    )
    parser.add_argument(
        "--downloads", type=Path, default=Path("downloads"), help="where downloads are unpacked (default: downloads)"
    )
    add_force_arg(parser)
    return parser.parse_args(argv)


def download(url: str, downloads: Path) -> Path:
    try:
        return fetch(FSDD, downloads / f"fsdd-{FSDD.revision[:12]}", url).resolve()
    except DatasetError as err:
        raise FsddError(
            f"{err}. Without internet access, copy FSDD (a folder with recordings/) to this machine "
            "and run: local/download.py --local PATH"
        ) from None


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = {"local": str(args.local.resolve()) if args.local else None, "url": None if args.local else args.url}
    marker, path_file = args.data / ".download.done", args.data / PATH_FILE
    if not begin(marker, params, args.force, outputs=[path_file]):
        return
    root = args.local.resolve() if args.local else download(args.url, args.downloads)
    recordings = list_recordings(root)
    speakers = sorted({r.speaker for r in recordings})
    write_path_file(args.data, root)
    mark_done(marker, params)
    print(f"FSDD at {root}: {len(recordings)} recordings, speakers {', '.join(speakers)} -> {path_file}")


if __name__ == "__main__":
    sys.exit(run_main(main))
