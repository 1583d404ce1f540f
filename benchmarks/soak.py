#!/usr/bin/env python3
"""Soak test of the transcription service: a hostile mix for --minutes, on loopback, bounded.

Starts the real service (tests/live_server.py: the `asr serve` uvicorn configuration), then
for --minutes keeps --concurrency clients sending a mix of
- good uploads: connected digits built from real FSDD takes; each answer must be its own
  file's (duration, and the closest of all the files' digit strings), else it is "mixed up";
- bad uploads: corrupt, truncated, NaN samples, empty (4xx expected);
- decompression bombs: 120 s of 384 kHz x 8 channels FLAC in 1.2 MB (413 expected);
- huge float samples (|x| ~ 1e17; any answer but a mixed-up one is fine),
while --slow-clients raw connections keep uploading slowly: some finish within the body
deadline (200 expected), some stall (408 expected at the deadline). Prints counts by kind
and status, the 5xx and mixed-up counts, and the server's RSS at start, end and peak.

  .venv/bin/python benchmarks/soak.py --minutes 10 --concurrency 8

--bomb-burst N instead sends N bombs at once to an idle server and prints its idle and peak RSS:

  .venv/bin/python benchmarks/soak.py --bomb-burst 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import jiwer
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's audio builders, hostile clients and server runner
from hostile_clients import BOUNDARY, PART_HEAD, bomb_flac, huge_float_wav, status_of  # noqa: E402
from live_server import LiveServer  # noqa: E402
from load_test import Outcome, Upload, bad_uploads, good_uploads, mismatch  # noqa: E402


@dataclass
class Tally:
    counts: Counter  # (kind, status) -> requests; status 0: transport error
    mixed_up: list  # (kind, name, why)
    texts: list  # (expected, answered) of good uploads answered 200

    def add(self, kind: str, status: int, why: str = "", name: str = "") -> None:
        self.counts[(kind, status)] += 1
        if why:
            self.mixed_up.append((kind, name, why))


def own_answer(upload: Upload, body: dict, goods: list[Upload]) -> str:
    """Why this 200 answer is not `upload`'s own ("" if it is)."""
    if abs(body.get("duration", -1) - upload.duration) > 1e-3:
        return f"duration {body.get('duration')} is not this file's {upload.duration:.4f}"
    closest = min(goods, key=lambda g: jiwer.wer(g.text, body["text"] or "-"))
    if body["text"] and closest.text != upload.text and jiwer.wer(upload.text, body["text"]) > 0.5:
        return f"text {body['text']!r} is closer to {closest.name} than to its own {upload.text!r}"
    return ""


async def client(http: httpx.AsyncClient, deadline: float, mix: list, goods: list[Upload], tally: Tally, seed: int):
    rng = np.random.default_rng(seed)
    while time.monotonic() < deadline:
        kind, upload = mix[rng.integers(len(mix))]
        try:
            response = await http.post("/transcribe", files={"file": (upload.name, upload.data)})
            status, body = response.status_code, response.json()
        except (httpx.HTTPError, ValueError):
            tally.add(kind, 0)
            continue
        why = ""
        if kind == "good" and status == 200:
            why = own_answer(upload, body, goods)
            tally.texts.append((upload.text, body["text"]))
        elif kind in ("bad", "bomb"):
            why = mismatch(Outcome(upload, status, 0.0, body))  # the status and the error code of its own fault
        elif kind == "huge" and status == 200 and abs(body["duration"] - upload.duration) > 1e-3:
            why = f"duration {body['duration']} is not this file's"
        tally.add(kind, status, why, upload.name)


async def slow_client(url: str, deadline: float, goods: list[Upload], tally: Tally, body_timeout_s: float, seed: int):
    """Upload over a raw connection, slowly: half the time a good file in 10 pieces spread over
    a third of the body deadline (200 and its own answer expected), else a stall (408 expected)."""
    rng = np.random.default_rng(seed)
    host, port = url.removeprefix("http://").split(":")
    while time.monotonic() < deadline:
        upload = goods[rng.integers(len(goods))]
        stall = bool(rng.random() < 0.5)
        kind = "stalled" if stall else "slow"
        body = PART_HEAD + upload.data + b"\r\n--" + BOUNDARY + b"--\r\n"
        head = (
            f"POST /transcribe HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n\r\n"
        ).encode()
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(head)
            pieces = np.array_split(np.frombuffer(body, np.uint8), 10)
            for piece in pieces[: 3 if stall else 10]:
                writer.write(piece.tobytes())
                await writer.drain()
                await asyncio.sleep(body_timeout_s / 30)
            answer = await asyncio.wait_for(reader.read(), body_timeout_s + 10)
            writer.close()
        except (OSError, asyncio.TimeoutError):
            tally.add(kind, 0)
            continue
        status = status_of(answer) or 0
        why = ""
        if status != (408 if stall else 200):
            why = f"status {status}"
        elif not stall:
            why = own_answer(upload, json.loads(answer.split(b"\r\n\r\n", 1)[1]), goods)
        tally.add(kind, status, why, upload.name)


async def watch_rss(server: LiveServer, stop: asyncio.Event, samples: list[float]) -> None:
    while not stop.is_set():
        samples.append(server.rss_mib())
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def soak(server: LiveServer, mix: list, goods: list[Upload], args) -> tuple[Tally, float]:
    tally = Tally(Counter(), [], [])
    deadline = time.monotonic() + 60 * args.minutes
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    stop, samples = asyncio.Event(), []
    watcher = asyncio.create_task(watch_rss(server, stop, samples))
    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
        await asyncio.gather(
            *(client(http, deadline, mix, goods, tally, seed) for seed in range(args.concurrency)),
            *(slow_client(server.url, deadline, goods, tally, args.body_timeout, 1000 + seed)
              for seed in range(args.slow_clients)),
        )
    stop.set()
    await watcher
    return tally, time.perf_counter() - start


def report(tally: Tally, seconds: float, rss: dict) -> dict:
    kinds = sorted({k for k, _ in tally.counts})
    by_kind = {k: {str(s): n for (kk, s), n in sorted(tally.counts.items()) if kk == k} for k in kinds}
    refs, hyps = zip(*tally.texts) if tally.texts else ((), ())
    summary = {
        "seconds": round(seconds, 1),
        "requests": sum(tally.counts.values()),
        "by_kind_and_status": by_kind,
        "server_errors_5xx": sum(n for (_, s), n in tally.counts.items() if s >= 500),
        "transport_errors": sum(n for (_, s), n in tally.counts.items() if s == 0),
        "mixed_up": len(tally.mixed_up),
        "good_wer": round(jiwer.wer(list(refs), [h or "-" for h in hyps]), 4) if refs else None,
        "server_rss_mib": rss,
    }
    print(f"{summary['requests']} requests in {seconds:.0f} s")
    for kind, statuses in by_kind.items():
        print(f"  {kind:8s} {statuses}")
    print(f"5xx: {summary['server_errors_5xx']}  transport errors: {summary['transport_errors']}  "
          f"mixed up / unexpected: {summary['mixed_up']}" + "".join(f"\n  {k} {n}: {w}" for k, n, w in tally.mixed_up[:10]))
    print(f"WER on good answers: {summary['good_wer']}")
    print(f"server RSS: start {rss['start']:.0f} MiB, end {rss['end']:.0f} MiB, peak {rss['peak']:.0f} MiB")
    return summary


async def bomb_burst(server: LiveServer, bomb: bytes, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
        responses = await asyncio.gather(
            *(http.post("/transcribe", files={"file": ("bomb.flac", bomb)}) for _ in range(count)),
            return_exceptions=True,
        )
    return [r.status_code if isinstance(r, httpx.Response) else 0 for r in responses]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8, help="clients sending whole uploads")
    parser.add_argument("--slow-clients", type=int, default=4, help="clients uploading slowly or stalling")
    parser.add_argument("--good-files", type=int, default=40)
    parser.add_argument("--bomb-burst", type=int, metavar="N", help="only send N bombs at once and report RSS")
    parser.add_argument("--env", action="append", default=[], metavar="ASR_X=V", help="server setting, repeatable")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    args.body_timeout = float(env.get("ASR_BODY_TIMEOUT_S", 30))
    bomb = bomb_flac()
    with LiveServer(env) as server:
        time.sleep(1)
        idle = server.rss_mib()
        if args.bomb_burst:
            start = time.perf_counter()
            statuses = asyncio.run(bomb_burst(server, bomb, args.bomb_burst))
            peak = server.peak_rss_mib()
            print(f"{args.bomb_burst} bombs ({len(bomb) / 2**20:.1f} MiB FLAC each: 120 s at 384 kHz x 8 channels) "
                  f"in {time.perf_counter() - start:.1f} s: statuses {dict(Counter(statuses))}")
            print(f"server RSS: idle {idle:.0f} MiB, peak {peak:.0f} MiB (+{peak - idle:.0f} MiB)")
            return 0 if peak < idle + 500 and not any(s >= 500 or s == 0 for s in statuses) else 1
        goods = good_uploads(args.good_files)
        real = goods[0].data
        bads = bad_uploads(real) + [Upload("truncated-data", real[: len(real) // 2], 400, error_code="audio_decode")]
        mix = (
            [("good", g) for g in goods]
            + [("bad", b) for b in bads] * 2
            + [("bomb", Upload("bomb.flac", bomb, 413, error_code="audio_too_long"))] * 2
            + [("huge", Upload("huge.wav", huge_float_wav(), 200, duration=1.0))]
        )
        tally, seconds = asyncio.run(soak(server, mix, goods, args))
        summary = report(tally, seconds, {"start": idle, "end": server.rss_mib(), "peak": server.peak_rss_mib()})
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["server_errors_5xx"] == 0 and summary["mixed_up"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
