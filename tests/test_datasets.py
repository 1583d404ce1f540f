"""Fetching pinned data sets (asr/datasets.py) and finding the tests' FSDD (tests/data_source.py).

Downloads go to a loopback HTTP server (a thread on 127.0.0.1) or a file:// URL, serving zips
laid out like GitHub's archive of FSDD and built from real FSDD recordings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import subprocess
import threading
import zipfile
from pathlib import Path

import data_source
import pytest
from data_source import find_fsdd, write_archive

from asr.datasets import (
    FSDD, PARTIAL, ArchivePin, DatasetError, Pin, fetch, fetch_archive, fetched_from, file_hashes, listing_digest,
    verify_copy,
)

SMALL = tuple(sorted(f"{d}_{s}_0.wav" for s in ("george", "theo") for d in range(10)))


class Loopback:
    """An HTTP/1.0 server on 127.0.0.1 in a thread, serving `files` ({path: bytes}); logs the paths asked for
    and the Range header of each request (None without one).

    A path in `cut_after` announces its full Content-Length, sends the bytes before that offset and hangs up.
    `Range: bytes=N-` is answered with 206 and the bytes from N (416 past the end), unless `honour_ranges`
    is False: then with 200 and the whole file, as a server without range support does.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.requests: list[str] = []
        self.ranges: list[str | None] = []
        self.honour_ranges = True
        loopback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                loopback.requests.append(self.path)
                loopback.ranges.append(self.headers.get("Range"))
                body = loopback.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range") and loopback.honour_ranges:
                    start = int(self.headers["Range"].removeprefix("bytes=").removesuffix("-"))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start : loopback.cut_after.get(self.path, len(body))])

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def serve(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url(path)


@pytest.fixture
def loopback():
    server = Loopback()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def small_pin(fsdd_dir: Path) -> Pin:
    """20 real recordings, pinned the way FSDD is (digest of their sha256sum listing)."""
    digest = listing_digest(file_hashes(fsdd_dir / "recordings", SMALL))
    return dataclasses.replace(FSDD, files=SMALL, digest=digest, url="http://127.0.0.1:9/unused.zip")


@pytest.fixture(scope="module")
def small_zip(tmp_path_factory, fsdd_dir: Path) -> bytes:
    """The 20 pinned recordings plus one more that is not pinned, like the sixth speaker upstream."""
    archive = tmp_path_factory.mktemp("small") / "small.zip"
    return write_archive(fsdd_dir, archive, names=(*SMALL, "0_jackson_0.wav")).read_bytes()


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def tampered(archive: bytes, name: str) -> bytes:
    """The archive with one sample of `name` changed (a valid zip: CRCs match the new bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = bytearray(src.read(info))
            if info.filename.endswith("/" + name):
                data[-1] ^= 0x01  # the last sample's low bit: inaudible, but not the pinned recording
            dst.writestr(info, bytes(data))
    return out.getvalue()


# --- the pin --------------------------------------------------------------------------------


def test_pinned_digest_is_that_of_the_test_copy_and_of_sha256sum(fsdd_dir: Path):
    verify_copy(fsdd_dir, FSDD)  # the content the whole suite runs on
    assert len(FSDD.files) == 2500 and len(FSDD.revision) == 40
    listing = subprocess.run(
        ["sha256sum", *SMALL], cwd=fsdd_dir / "recordings", capture_output=True, check=True
    ).stdout
    assert listing_digest(file_hashes(fsdd_dir / "recordings", SMALL)) == hashlib.sha256(listing).hexdigest()


def test_verify_copy_names_a_missing_file_and_refuses_changed_content(tmp_path, fsdd_dir, small_pin):
    (tmp_path / "recordings").mkdir()
    for name in SMALL[1:]:
        (tmp_path / "recordings" / name).symlink_to(fsdd_dir / "recordings" / name)
    with pytest.raises(DatasetError, match=f"1 of the 20 FSDD files are missing, e.g. {SMALL[0]}"):
        verify_copy(tmp_path, small_pin)
    data = bytearray((fsdd_dir / "recordings" / SMALL[0]).read_bytes())
    data[-1] ^= 0x01
    (tmp_path / "recordings" / SMALL[0]).write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="differ from revision 26eb9aaf76e81b692f806f9140c2d2777410d7a1"):
        verify_copy(tmp_path, small_pin)


# --- fetch ----------------------------------------------------------------------------------


def test_fetch_over_http_verifies_unpacks_and_reuses(tmp_path, loopback, fsdd_dir, small_pin, small_zip):
    url = loopback.serve("/archive/fsdd.zip", small_zip)
    dest, lines = tmp_path / "cache" / "fsdd", []
    assert fetch(small_pin, dest, url, log=lines.append) == dest
    assert sorted(p.name for p in (dest / "recordings").iterdir()) == list(SMALL)  # the unpinned one left out
    for name in SMALL:
        assert (dest / "recordings" / name).read_bytes() == (fsdd_dir / "recordings" / name).read_bytes()
    assert fetched_from(dest, small_pin) == url
    assert loopback.requests == ["/archive/fsdd.zip"]
    assert [p.name for p in leftovers(dest.parent)] == ["fsdd"]  # no temporary folder or archive left
    assert fetch(small_pin, dest, url, log=lines.append) == dest  # second call: reused, not fetched
    assert loopback.requests == ["/archive/fsdd.zip"]
    assert len(lines) == 2 and lines[0].startswith("downloading FSDD 26eb9aaf76e8 from http://127.0.0.1:")


def test_fetch_from_a_file_url(tmp_path, small_pin, small_zip):
    archive = tmp_path / "fsdd.zip"
    archive.write_bytes(small_zip)
    dest = fetch(small_pin, tmp_path / "fsdd", archive.as_uri(), log=lambda line: None)
    verify_copy(dest, small_pin)


def test_a_tampered_archive_is_refused_and_not_cached(tmp_path, loopback, small_pin, small_zip):
    url = loopback.serve("/fsdd.zip", tampered(small_zip, "3_theo_0.wav"))
    dest = tmp_path / "cache" / "fsdd"
    refused = r"differ from revision [0-9a-f]{40} \(content sha256 [0-9a-f]{64}, pinned"
    with pytest.raises(DatasetError, match=refused) as err:
        fetch(small_pin, dest, url, log=lambda line: None)
    assert "refusing them" in str(err.value)
    assert leftovers(dest.parent) == []
    loopback.serve("/fsdd.zip", small_zip)  # the next call fetches again (nothing was taken from the bad one)
    assert fetch(small_pin, dest, url, log=lambda line: None) == dest
    assert loopback.requests == ["/fsdd.zip", "/fsdd.zip"]


def test_a_corrupt_archive_is_refused_and_not_cached(tmp_path, loopback, small_pin, small_zip):
    corrupt = bytearray(small_zip)
    middle = len(corrupt) // 2
    corrupt[middle : middle + 64] = bytes(64)  # inside some recording's compressed data
    url = loopback.serve("/fsdd.zip", bytes(corrupt))
    with pytest.raises(DatasetError, match="is not a complete, valid zip archive"):
        fetch(small_pin, tmp_path / "cache" / "fsdd", url, log=lambda line: None)
    assert leftovers(tmp_path / "cache") == []


def test_an_interrupted_download_is_not_taken_for_a_whole_one(tmp_path, loopback, small_pin, small_zip):
    url = loopback.serve("/fsdd.zip", small_zip)
    loopback.cut_after["/fsdd.zip"] = len(small_zip) // 2  # the connection drops half way
    with pytest.raises(DatasetError, match=rf"stopped after {len(small_zip) // 2} of {len(small_zip)} bytes"):
        fetch(small_pin, tmp_path / "cache" / "fsdd", url, log=lambda line: None)
    assert leftovers(tmp_path / "cache") == []
    truncated = tmp_path / "truncated.zip"  # a partial file with no length to check it against
    truncated.write_bytes(small_zip[: len(small_zip) - 100])
    with pytest.raises(DatasetError, match="is not a complete, valid zip archive"):
        fetch(small_pin, tmp_path / "cache" / "fsdd", truncated.as_uri(), log=lambda line: None)
    assert leftovers(tmp_path / "cache") == []


def test_an_archive_without_every_pinned_file_is_refused(tmp_path, fsdd_dir, small_pin):
    archive = write_archive(fsdd_dir, tmp_path / "partial.zip", names=SMALL[:-1])
    lacks = f"lacks 1 of the 20 FSDD 26eb9aaf76e8 files \\(e.g. recordings/{SMALL[-1]}\\)"
    with pytest.raises(DatasetError, match=lacks):
        fetch(small_pin, tmp_path / "cache" / "fsdd", archive.as_uri(), log=lambda line: None)
    assert leftovers(tmp_path / "cache") == []


def test_an_unreachable_archive_is_a_clear_error(tmp_path, loopback, small_pin):
    with pytest.raises(DatasetError, match="could not download http://127.0.0.1:.*/missing.zip \\(Not Found\\)"):
        fetch(small_pin, tmp_path / "cache" / "fsdd", loopback.url("/missing.zip"), log=lambda line: None)
    with pytest.raises(DatasetError, match="could not download http://127.0.0.1:9/"):
        fetch(small_pin, tmp_path / "cache" / "fsdd", "http://127.0.0.1:9/fsdd.zip", log=lambda line: None)
    assert leftovers(tmp_path / "cache") == []


# --- fetch_archive: one file pinned by its bytes, resumed ------------------------------------


@pytest.fixture
def archive_pin(small_zip) -> ArchivePin:
    return ArchivePin("small", "http://127.0.0.1:9/unused.zip", hashlib.sha256(small_zip).hexdigest())


def test_fetch_archive_resumes_an_interrupted_download(tmp_path, loopback, small_zip, archive_pin):
    url, half = loopback.serve("/small.zip", small_zip), len(small_zip) // 2
    dest = tmp_path / "downloads" / "small.zip"
    loopback.cut_after["/small.zip"] = half  # the connection drops half way
    with pytest.raises(DatasetError, match=f"stopped after {half} of {len(small_zip)} bytes; the next try resumes"):
        fetch_archive(archive_pin, dest, url, log=lambda line: None)
    partial = dest.with_name(dest.name + PARTIAL)
    assert partial.read_bytes() == small_zip[:half] and not dest.exists()
    del loopback.cut_after["/small.zip"]
    lines = []
    assert fetch_archive(archive_pin, dest, url, log=lines.append) == dest
    assert loopback.ranges == [None, f"bytes={half}-"]  # the second request asked for the rest only
    assert dest.read_bytes() == small_zip and not partial.exists()
    assert f"resuming after {half} bytes" in lines[0] and lines[1] == f"small: sha256 verified, {dest}"
    assert fetch_archive(archive_pin, dest, url, log=lines.append) == dest  # verified before: not fetched again
    assert len(loopback.requests) == 2


def test_fetch_archive_starts_again_when_the_server_ignores_the_range(tmp_path, loopback, small_zip, archive_pin):
    url = loopback.serve("/small.zip", small_zip)
    dest = tmp_path / "small.zip"
    dest.with_name(dest.name + PARTIAL).write_bytes(b"x" * 1000)  # what an earlier try left
    loopback.honour_ranges = False
    fetch_archive(archive_pin, dest, url, log=lambda line: None)
    assert loopback.ranges == ["bytes=1000-"] and dest.read_bytes() == small_zip


def test_fetch_archive_takes_a_whole_partial_file_the_server_has_nothing_after(tmp_path, loopback, small_zip, archive_pin):
    url = loopback.serve("/small.zip", small_zip)
    dest = tmp_path / "small.zip"
    dest.with_name(dest.name + PARTIAL).write_bytes(small_zip)  # downloaded, but stopped before the rename
    assert fetch_archive(archive_pin, dest, url, log=lambda line: None) == dest  # the server answers 416
    assert dest.read_bytes() == small_zip and leftovers(tmp_path) == [dest]


def test_fetch_archive_refuses_other_bytes_and_deletes_them(tmp_path, loopback, small_zip, archive_pin):
    url = loopback.serve("/small.zip", tampered(small_zip, "3_theo_0.wav"))
    dest = tmp_path / "small.zip"
    with pytest.raises(DatasetError, match=f"sha256 [0-9a-f]{{64}}, pinned {archive_pin.sha256}; refusing it"):
        fetch_archive(archive_pin, dest, url, log=lambda line: None)
    assert leftovers(tmp_path) == []  # neither the file nor a partial one to resume from


def test_the_real_pin_accepts_an_archive_laid_out_like_upstream(tmp_path, loopback, fsdd_archive):
    path = f"/Jakobovski/free-spoken-digit-dataset/archive/{FSDD.revision}.zip"
    url = loopback.serve(path, fsdd_archive.read_bytes())
    dest = fetch(FSDD, tmp_path / "fsdd", url, log=lambda line: None)
    assert len(list((dest / "recordings").glob("*.wav"))) == 2500
    assert fetched_from(dest, FSDD) == url


# --- where the tests find FSDD --------------------------------------------------------------


@pytest.fixture
def no_copies(monkeypatch, tmp_path):
    """Neither ASR_TEST_DATA nor ../shared/data; the cache in tmp_path/cache."""
    monkeypatch.delenv("ASR_TEST_DATA", raising=False)
    monkeypatch.delenv("ASR_TEST_DATA_URL", raising=False)
    monkeypatch.setenv("ASR_TEST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data_source, "SHARED_DATA", tmp_path / "no-shared" / "data")
    return tmp_path / "cache"


def test_finder_takes_ASR_TEST_DATA_first(monkeypatch, tmp_path, fsdd_dir):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fsdd").symlink_to(fsdd_dir)
    monkeypatch.setenv("ASR_TEST_DATA", str(tmp_path / "data"))
    data = find_fsdd()
    assert data.fsdd == tmp_path.resolve() / "data" / "fsdd"
    assert "(ASR_TEST_DATA; 2500 recordings verified)" in data.origin
    monkeypatch.setenv("ASR_TEST_DATA", str(tmp_path))  # set, but no fsdd/ in it: an error, not a fallback
    with pytest.raises(DatasetError, match="ASR_TEST_DATA: .*/fsdd/recordings not found"):
        find_fsdd()


def test_finder_refuses_a_copy_whose_recordings_differ(monkeypatch, tmp_path, fsdd_dir):
    recordings = tmp_path / "data" / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for name in FSDD.files:
        (recordings / name).symlink_to(fsdd_dir / "recordings" / name)
    (recordings / "7_nicolas_3.wav").unlink()
    (recordings / "7_nicolas_3.wav").write_bytes((fsdd_dir / "recordings" / "7_nicolas_4.wav").read_bytes())
    monkeypatch.setenv("ASR_TEST_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetError, match="differ from revision"):
        find_fsdd()


def test_finder_downloads_once_into_the_cache_without_a_copy(no_copies, loopback, fsdd_archive, monkeypatch):
    url = loopback.serve("/fsdd.zip", fsdd_archive.read_bytes())
    monkeypatch.setenv("ASR_TEST_DATA_URL", url)
    lines: list[str] = []
    first = find_fsdd(log=lines.append)
    assert first.fsdd == no_copies / f"fsdd-{FSDD.revision[:12]}"
    assert first.origin.endswith(f"(cache, just fetched from {url}; verified)")
    second = find_fsdd(log=lines.append)
    assert second.fsdd == first.fsdd and f"(cache, fetched earlier from {url})" in second.origin
    assert loopback.requests == ["/fsdd.zip"] and len(lines) == 2  # "downloading ...", "... verified"


def test_finder_without_network_says_what_to_set(no_copies, monkeypatch):
    monkeypatch.setenv("ASR_TEST_DATA_URL", "http://127.0.0.1:9/fsdd.zip")
    with pytest.raises(DatasetError, match="could not download .* set ASR_TEST_DATA to a folder holding fsdd/"):
        find_fsdd(log=lambda line: None)
    assert leftovers(no_copies) == []


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("ASR_TEST_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_source.cache_dir() == tmp_path / "xdg" / "asr-tests"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_source.cache_dir() == Path.home() / ".cache" / "asr-tests"
    monkeypatch.setenv("ASR_TEST_CACHE", str(tmp_path / "mine"))
    assert data_source.cache_dir() == tmp_path / "mine"
