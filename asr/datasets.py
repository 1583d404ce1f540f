"""Public data sets fetched by the recipes and the tests: pinned, verified by content, unpacked once.

A data set is pinned by the files we use from it, not by the bytes of its archive: GitHub
builds archive zips on demand and does not promise they stay byte-identical, but the files
in them do not change at a fixed commit. `Pin.digest` is the SHA-256 of the `sha256sum`
listing of the pinned files sorted by name, so a copy can be checked with the shell alone:

    cd fsdd/recordings && LC_ALL=C ls [0-9]_{george,jackson,nicolas,theo,yweweler}_*.wav \\
        | LC_ALL=C sort | xargs sha256sum | sha256sum          # -> FSDD.digest

`fetch` downloads an archive (https:// or file://), checks every pinned file against the
digest, and moves them into place in one rename with a record of what was verified, so an
interrupted, corrupt or tampered download is never taken for a finished one.

Hosts that serve fixed files (OpenSLR) are pinned by the bytes of the file instead
(`ArchivePin`, `fetch_archive`): archives of many gigabytes, so an interrupted download is
resumed where it stopped, and the whole file is checked before it takes its name.
`unpacked_tar` then unpacks such a verified archive where its folders can be renamed into place.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Mapping

TIMEOUT_S = 60  # per network operation, not for the whole download
VERIFIED = ".verified.json"  # written inside a fetched folder, by the rename that completes it


class DatasetError(Exception):
    """A data set could not be found, fetched or verified; the message says what to do."""


@dataclass(frozen=True)
class Pin:
    """The files of a data set we rely on, at a fixed revision of its public archive."""

    name: str  # for messages, e.g. "FSDD"
    url: str  # a zip of the repository at `revision`
    revision: str  # full commit hash
    folder: str  # the archive folder holding the files, e.g. "recordings"
    files: tuple[str, ...]  # the pinned file names (sorted); other files of the archive are left out
    digest: str  # listing_digest of the pinned files

    @property
    def short(self) -> str:
        return f"{self.name} {self.revision[:12]}"


FSDD_REVISION = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"  # git describe: v1.0.10-27-g26eb9aa; 6 speakers
FSDD_SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")  # the recipe's and the tests'
FSDD = Pin(
    name="FSDD",
    url=f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_REVISION}.zip",
    revision=FSDD_REVISION,
    folder="recordings",
    files=tuple(sorted(f"{d}_{s}_{t}.wav" for s in FSDD_SPEAKERS for d in range(10) for t in range(50))),
    digest="917f6ba5bd04fc07c2dbabf863c8ef2b90c8d0fb67438afac7930333a71fe6a3",  # 2,500 recordings
)


@dataclass(frozen=True)
class ArchivePin:
    """One file at a fixed URL, pinned by the SHA-256 of its bytes."""

    name: str  # for messages, e.g. "LibriSpeech dev-clean"
    url: str
    sha256: str


PARTIAL = ".part"  # suffix of a download in progress, beside its destination


def listing_digest(hashes: Mapping[str, str]) -> str:
    """SHA-256 of the `sha256sum` listing ("<hex>  <name>" lines) of {name: sha256 hex}, sorted by name."""
    listing = "".join(f"{hashes[name]}  {name}\n" for name in sorted(hashes))
    return hashlib.sha256(listing.encode()).hexdigest()


def file_hashes(folder: Path, names: Iterable[str]) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def verify_copy(root: Path, pin: Pin) -> None:
    """DatasetError unless `root/<pin.folder>/` holds every pinned file, with the pinned content.

    Other files beside them (another speaker, a README) are allowed and not looked at.
    """
    folder = root / pin.folder
    missing = [name for name in pin.files if not (folder / name).is_file()]
    if missing:
        count = f"{len(missing)} of the {len(pin.files)} {pin.name} files are missing"
        raise DatasetError(f"{folder}: {count}, e.g. {missing[0]}")
    _check_digest(listing_digest(file_hashes(folder, pin.files)), pin, str(folder))


def fetch(pin: Pin, dest: Path, url: str | None = None, log: Callable[[str], None] = print) -> Path:
    """`dest`, holding `<pin.folder>/` with the pinned files: reused if an earlier fetch verified it,
    else downloaded from `url` (default `pin.url`: a mirror must hold the same content), checked and
    unpacked. DatasetError, with nothing written to `dest`, when the download fails or does not match.
    """
    if is_fetched(dest, pin):
        return dest
    url = url or pin.url
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temporary folder sits beside dest, so that the final rename stays on one file system.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        archive, unpacked = Path(tmp) / "archive.zip", Path(tmp) / dest.name
        log(f"downloading {pin.short} from {url} into {dest}")
        _download(url, archive)
        hashes = _unpack_pinned(archive, unpacked, pin, url)
        _check_digest(listing_digest(hashes), pin, url)
        record = {"name": pin.name, "revision": pin.revision, "url": url, "digest": pin.digest, "files": len(hashes)}
        (unpacked / VERIFIED).write_text(json.dumps(record, indent=1) + "\n")
        if dest.exists():  # left by an older version or by hand: never verified, so not ours to keep
            shutil.rmtree(dest)
        try:
            os.replace(unpacked, dest)
        except OSError:
            if not is_fetched(dest, pin):  # else another process finished the same fetch first
                raise
    log(f"{pin.short}: {len(pin.files)} files verified, in {dest / pin.folder}")
    return dest


def fetched_from(dest: Path, pin: Pin) -> str | None:
    """The URL that fetch(pin, dest) verified and unpacked into `dest` earlier, or None if it did not."""
    try:
        record = json.loads((dest / VERIFIED).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("digest") != pin.digest or not (dest / pin.folder).is_dir():
        return None
    return str(record.get("url"))


def is_fetched(dest: Path, pin: Pin) -> bool:
    return fetched_from(dest, pin) is not None


def fetch_archive(pin: ArchivePin, dest: Path, url: str | None = None, log: Callable[[str], None] = print) -> Path:
    """`dest`, holding the pinned bytes, downloaded from `url` (default `pin.url`, or a mirror).

    A file at `dest` is one that this function verified and renamed there, so it is returned as it
    is. Otherwise the bytes go to `dest` + PARTIAL, resuming (an HTTP Range request) after what an
    interrupted call left there; the whole file is then hashed and takes the name `dest` only if it
    matches. DatasetError when the download fails (the partial file stays, for the next call to
    resume) or when the bytes differ (the partial file is deleted: resuming cannot mend it).
    """
    if dest.is_file():
        return dest
    url = url or pin.url
    partial = dest.with_name(dest.name + PARTIAL)
    dest.parent.mkdir(parents=True, exist_ok=True)
    kept = partial.stat().st_size if partial.is_file() else 0
    log(f"downloading {pin.name} from {url} into {dest}" + (f", resuming after {kept} bytes" if kept else ""))
    try:
        _download(url, partial, resume=True)
    except DatasetError as err:
        raise DatasetError(f"{err}; the next try resumes from {partial}") from None
    digest = _sha256(partial)
    if digest != pin.sha256:
        partial.unlink()
        raise DatasetError(f"{url}: sha256 {digest}, pinned {pin.sha256}; refusing it (the download was deleted)")
    os.replace(partial, dest)
    log(f"{pin.name}: sha256 verified, {dest}")
    return dest


@contextmanager
def unpacked_tar(archive: Path, beside: Path) -> Iterator[Path]:
    """A temporary folder inside `beside` holding `archive` unpacked, deleted on exit: on the same
    file system as `beside`, so that what the caller takes from it moves into place by one rename and
    a folder there is never half unpacked. Paths out of the folder, links out of it and device files
    are refused (tarfile's "data" filter). DatasetError if the archive cannot be read whole."""
    beside.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=beside, prefix=f".{archive.name}.") as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DatasetError(f"{archive}: cannot unpack it ({err})") from None
        yield Path(tmp)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, path: Path, resume: bool = False) -> None:
    """url -> path; DatasetError if it fails or stops short of the announced Content-Length.

    With `resume`, the bytes already in `path` are kept and only the rest is asked for (an HTTP
    Range request); a server that answers with the whole file instead has it written from the start.
    """
    offset = path.stat().st_size if resume and path.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            rest = offset > 0 and getattr(response, "status", None) == 206  # 206 Partial Content
            with open(path, "ab" if rest else "wb") as out:
                announced = response.headers.get("Content-Length")
                shutil.copyfileobj(response, out, 1 << 20)
                received = out.tell() - (offset if rest else 0)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # Range Not Satisfiable: nothing after `offset`, the file is whole
            return
        raise DatasetError(f"could not download {url} ({err.reason})") from None
    except (OSError, http.client.HTTPException, ValueError) as err:  # URLError is an OSError
        reason = getattr(err, "reason", None) or err
        raise DatasetError(f"could not download {url} ({reason})") from None
    # http.client ends a body that stops early as if it were complete: compare the sizes ourselves.
    if announced is not None and received != int(announced):
        kept = "" if resume else "; nothing was kept"
        raise DatasetError(f"the download of {url} stopped after {received} of {announced} bytes{kept}")


def _unpack_pinned(archive: Path, out: Path, pin: Pin, url: str) -> dict[str, str]:
    """Copy the pinned files found in `archive` (under any `[top/]<pin.folder>/`) to `out/<pin.folder>/`.

    Returns {name: sha256 hex}. Only pinned names are written, so the archive's paths never are.
    """
    wanted = set(pin.files)
    try:
        with zipfile.ZipFile(archive) as zf:
            members: dict[str, zipfile.ZipInfo] = {}
            for info in zf.infolist():
                parts = PurePosixPath(info.filename).parts
                if len(parts) in (2, 3) and parts[-2] == pin.folder and parts[-1] in wanted:
                    if parts[-1] in members:
                        raise DatasetError(f"{url}: the archive holds {parts[-1]} twice; refusing it")
                    members[parts[-1]] = info
            missing = sorted(wanted - members.keys())
            if missing:
                raise DatasetError(
                    f"{url}: the archive lacks {len(missing)} of the {len(wanted)} {pin.short} files "
                    f"(e.g. {pin.folder}/{missing[0]}); refusing it"
                )
            (out / pin.folder).mkdir(parents=True)
            hashes = {}
            for name, info in members.items():
                data = zf.read(info)  # checks the CRC-32 of every member
                hashes[name] = hashlib.sha256(data).hexdigest()
                (out / pin.folder / name).write_bytes(data)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DatasetError(f"{url} is not a complete, valid zip archive ({err}); nothing was kept") from None
    return hashes


def _check_digest(digest: str, pin: Pin, where: str) -> None:
    if digest != pin.digest:
        raise DatasetError(
            f"{where}: the {len(pin.files)} {pin.name} files differ from revision {pin.revision} "
            f"(content sha256 {digest}, pinned {pin.digest}); refusing them"
        )
