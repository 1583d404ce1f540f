"""Where the tests and the benchmarks find their real audio (FSDD), the first of:

1. `$ASR_TEST_DATA/fsdd`: ASR_TEST_DATA names a folder holding fsdd/ (e.g. the project's
   shared data folder); set but without it is an error, never a silent fallback;
2. `../shared/data/fsdd` beside the repository (the project's offline copy);
3. the cache `$ASR_TEST_CACHE/fsdd-<commit>` (default `${XDG_CACHE_HOME:-~/.cache}/asr-tests`),
   filled once from the pinned FSDD archive on GitHub, or from `$ASR_TEST_DATA_URL` (a mirror,
   file:// or http://) when set.

Whichever it is, it must hold the pinned recordings (`asr.datasets.FSDD`): a copy whose content
differs is refused, not used. `python tests/data_source.py` finds (or fetches) the data and says where
(`make test-data`).
"""

from __future__ import annotations

import functools
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from asr.datasets import FSDD, DatasetError, fetch, fetched_from, verify_copy

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class TestData:
    __test__ = False  # not a test class, whatever pytest thinks of its name

    fsdd: Path  # a folder holding recordings/
    origin: str  # one line: where it came from


def cache_dir() -> Path:
    if os.environ.get("ASR_TEST_CACHE"):
        return Path(os.environ["ASR_TEST_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "asr-tests"


def find_fsdd(log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> TestData:
    """The tests' FSDD copy, verified; DatasetError with what to do when there is none."""
    if os.environ.get("ASR_TEST_DATA"):
        root = Path(os.environ["ASR_TEST_DATA"]).expanduser().resolve() / "fsdd"
        if not (root / FSDD.folder).is_dir():
            raise DatasetError(f"ASR_TEST_DATA: {root / FSDD.folder} not found (give a folder holding fsdd/)")
        return _verified(root, "ASR_TEST_DATA")
    shared = SHARED_DATA / "fsdd"
    if (shared / FSDD.folder).is_dir():
        return _verified(shared, "../shared/data beside the repository")
    dest = cache_dir() / f"fsdd-{FSDD.revision[:12]}"
    earlier = fetched_from(dest, FSDD)
    if earlier:
        return TestData(dest, f"FSDD test data: {dest} (cache, fetched earlier from {earlier})")
    url = os.environ.get("ASR_TEST_DATA_URL") or FSDD.url
    try:
        fetch(FSDD, dest, url, log=log)
    except DatasetError as err:
        raise DatasetError(
            f"{err}. The tests need FSDD: set ASR_TEST_DATA to a folder holding fsdd/recordings/, "
            "or ASR_TEST_DATA_URL to a reachable copy of the archive"
        ) from None
    return TestData(dest, f"FSDD test data: {dest} (cache, just fetched from {url}; verified)")


def _verified(root: Path, how: str) -> TestData:
    verify_copy(root, FSDD)
    return TestData(root, f"FSDD test data: {root} ({how}; {len(FSDD.files)} recordings verified)")


def write_archive(src: Path, archive: Path, names: Iterable[str] = FSDD.files, top: str | None = None) -> Path:
    """A zip laid out like GitHub's archive of the FSDD repository: `<top>/recordings/<name>`, a README.

    `src` holds recordings/; `top` defaults to `free-spoken-digit-dataset-<commit>`, as GitHub names it.
    """
    top = top or f"free-spoken-digit-dataset-{FSDD.revision}"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/README.md", "# Free Spoken Digit Dataset (FSDD)\n")
        for name in names:
            zf.write(src / FSDD.folder / name, f"{top}/{FSDD.folder}/{name}")
    return archive


@functools.cache
def fsdd_for_script() -> Path:
    """find_fsdd for benchmarks and commands, once: says where the data is on stderr, exits with the error."""
    try:
        data = find_fsdd()
    except DatasetError as err:
        sys.exit(f"error: {err}")
    print(data.origin, file=sys.stderr)
    return data.fsdd


if __name__ == "__main__":
    fsdd_for_script()
