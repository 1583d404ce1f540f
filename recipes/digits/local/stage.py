"""Bookkeeping shared by the recipe's data stages.

A stage writes its outputs, then a `.done` marker holding the options it ran
with. A re-run with the same options is a no-op; a re-run with other options
(or with --force) deletes the old outputs and starts again, so a half-written
or stale directory is never mistaken for a finished one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

DONE_MARKER = ".done"


class StageError(Exception):
    """A failure the user can act on; scripts print it and exit with status 1."""


def add_force_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="redo the stage even if its outputs are complete")


def add_seed_arg(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--seed", type=int, default=default, help=f"random seed (default: {default})")


def add_digit_range_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-digits", type=int, default=1, help="shortest digit string (default: 1)")
    parser.add_argument("--max-digits", type=int, default=7, help="longest digit string (default: 7)")


def parse_with_digit_range(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """parse_args, then check 1 <= --min-digits <= --max-digits."""
    args = parser.parse_args(argv)
    if not 1 <= args.min_digits <= args.max_digits:
        parser.error("need 1 <= --min-digits <= --max-digits")
    return args


def _normalised(params: dict[str, Any]) -> dict[str, Any]:
    # Tuples become lists and paths strings, exactly as they read back from JSON.
    return json.loads(json.dumps(params, default=str))


def read_marker(marker: Path) -> dict[str, Any] | None:
    """The options a finished stage ran with, or None when it has not finished."""
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def done_marker(out_dir: Path) -> Path:
    """The marker of a stage whose output is the folder out_dir."""
    return out_dir / DONE_MARKER


def begin(marker: Path, params: dict[str, Any], force: bool, outputs: Sequence[Path]) -> bool:
    """Return False when the stage finished before with these `params` (nothing to do).

    Otherwise delete the marker and the stage's `outputs` (stale or partial
    files and folders) and return True: the caller then writes its outputs and
    calls `mark_done(marker, params)` last.
    """
    previous = read_marker(marker)
    what = ", ".join(map(str, outputs))
    if previous == _normalised(params) and not force:
        print(f"{what}: already complete, skipping (--force to redo)")
        return False
    if previous is not None and not force:
        print(f"{what}: made with other options, regenerating")
    for path in (marker, *outputs):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    return True


def mark_done(marker: Path, params: dict[str, Any]) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps(_normalised(params), indent=1, sort_keys=True) + "\n")
    tmp.replace(marker)


def run_main(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Run a script's `main`; a StageError becomes one line on stderr and exit status 1."""
    try:
        main(argv)
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def write_path_file(path_file: Path, root: Path) -> None:
    """Record where a download stage found its corpus: `path_file` holds root's absolute path (written atomically)."""
    path_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = path_file.with_name(path_file.name + ".tmp")
    tmp.write_text(f"{root.resolve()}\n")
    tmp.replace(path_file)


def read_path_file(path_file: Path, missing: StageError) -> Path:
    """The corpus path a download stage recorded; `missing` is raised when it has not run."""
    if not path_file.is_file():
        raise missing
    return Path(path_file.read_text().strip())
