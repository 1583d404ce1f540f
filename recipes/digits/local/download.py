#!/usr/bin/env python3
"""Stage "download": find or fetch the Free Spoken Digit Dataset and record where it is.

  local/download.py --local /path/to/fsdd     # use an existing copy (offline machines)
  local/download.py                           # fetch the pinned release from GitHub

Writes <data>/fsdd_path (the absolute path of the copy), then the marker
<data>/.download.done; a re-run with the same options does nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Sequence

from fsdd import PATH_FILE, FsddError, list_recordings, write_path_file
from stage import StageError, add_force_arg, begin, mark_done, run_main

TAG = "v1.0.10"  # a fixed release, so the data cannot change under the recipe
URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/{TAG}.zip"
TIMEOUT_S = 60


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument(
        "--local", type=Path, help="use this existing FSDD copy (a folder with recordings/) instead of downloading"
    )
    parser.add_argument("--url", default=URL, help=f"archive to download (default: FSDD {TAG} from GitHub)")
    parser.add_argument(
        "--downloads", type=Path, default=Path("downloads"), help="where the archive is unpacked (default: downloads)"
    )
    add_force_arg(parser)
    return parser.parse_args(argv)


def fetch(url: str, dest: Path) -> None:
    """Download url to dest (via dest.part, so an interrupted download is never taken for a whole one)."""
    part = dest.with_name(dest.name + ".part")
    print(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError) as err:
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise StageError(
            f"could not download {url} ({reason}). Without internet access, copy FSDD "
            "(a folder with recordings/) to this machine and run: local/download.py --local PATH"
        ) from None
    part.replace(dest)


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a zip of the FSDD repository into dest; return the folder holding recordings/."""
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=dest.name + ".tmp"))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
    except zipfile.BadZipFile as err:
        shutil.rmtree(tmp)
        archive.unlink()
        raise StageError(f"{archive} is not a valid zip ({err}); deleted it, run the stage again") from None
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    roots = sorted(p.parent for p in dest.glob("*/recordings")) or sorted(p.parent for p in dest.glob("recordings"))
    if not roots:
        raise FsddError(f"the archive unpacked in {dest} has no recordings/ folder")
    return roots[0]


def download(url: str, downloads: Path) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    name = Path(url.rstrip("/")).name or "fsdd.zip"
    archive = downloads / f"fsdd-{name}"
    if not archive.is_file():
        fetch(url, archive)
    return unpack(archive, downloads / archive.name.removesuffix(".zip"))


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
