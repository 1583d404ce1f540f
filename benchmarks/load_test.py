#!/usr/bin/env python3
"""Load test of the transcription service, on loopback, bounded in requests and time.

Starts the real service (uvicorn, the shipped model unless --model), then sends
--requests requests at --concurrency, a mix of good recordings (connected digits built
from real FSDD takes) and bad uploads, and prints throughput, latency percentiles,
counts by status, the server's peak memory, and whether every response matched its own
file: a good file must come back with its own duration (every good file has a distinct
length) and, for accuracy, its own digits; a bad file with its own 4xx error type.

  .venv/bin/python benchmarks/load_test.py --requests 500 --concurrency 16
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
sys.path.insert(0, str(REPO / "tests"))  # the test suite's FSDD audio builder and server runner
from data_source import fsdd_for_script  # noqa: E402
from fsdd_audio import SAMPLE_RATE, SPEAKERS, connected_digits, digit_strings, expected_text, wav_bytes  # noqa: E402
from live_server import LiveServer  # noqa: E402


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    status: int  # expected
    text: str = ""  # good files: the spoken digits
    duration: float = 0.0  # good files: seconds
    error_code: str = ""  # bad files


def good_uploads(count: int) -> list[Upload]:
    uploads, lengths = [], set()
    for i, digits in enumerate(digit_strings(count * 2, seed=7, min_len=1, max_len=7)):
        wave, _ = connected_digits(fsdd_for_script(), digits, SPEAKERS[i % len(SPEAKERS)], seed=i)
        if len(wave) in lengths:  # durations identify files: keep them distinct
            continue
        lengths.add(len(wave))
        uploads.append(Upload(f"good-{digits}", wav_bytes(wave), 200, expected_text(digits), len(wave) / SAMPLE_RATE))
        if len(uploads) == count:
            return uploads
    raise RuntimeError("not enough distinct files")


def bad_uploads(real: bytes) -> list[Upload]:
    nan = np.sin(np.arange(8000) / 3.0).astype(np.float32)
    nan[10] = np.nan
    return [
        Upload("empty", b"", 400, error_code="empty_audio"),
        Upload("random-bytes", np.random.default_rng(0).bytes(3000), 400, error_code="audio_decode"),
        Upload("truncated-header", real[:30], 400, error_code="audio_decode"),
        Upload("zero-channels", real[:22] + b"\0\0" + real[24:], 400, error_code="audio_decode"),
        Upload("nan-samples", wav_bytes(nan, subtype="FLOAT"), 400, error_code="invalid_samples"),
    ]


def schedule(goods: list[Upload], bads: list[Upload], requests: int, bad_fraction: float) -> list[Upload]:
    """Which file each request sends: good files in turn, a random bad one with `bad_fraction`."""
    rng = np.random.default_rng(0)
    return [
        bads[rng.integers(len(bads))] if rng.random() < bad_fraction else goods[i % len(goods)]
        for i in range(requests)
    ]


@dataclass
class Outcome:
    upload: Upload
    status: int  # 0: transport error
    latency: float
    body: dict


async def send(client: httpx.AsyncClient, upload: Upload) -> Outcome:
    start = time.perf_counter()
    try:
        response = await client.post("/transcribe", files={"file": (upload.name + ".wav", upload.data)})
        status, body = response.status_code, response.json()
    except (httpx.HTTPError, ValueError) as exc:
        status, body = 0, {"transport_error": repr(exc)}
    return Outcome(upload, status, time.perf_counter() - start, body)


async def run_load(url: str, uploads: list[Upload], concurrency: int, max_seconds: float):
    deadline = time.monotonic() + max_seconds
    outcomes: list[Outcome] = []
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker():
            nonlocal next_index
            while next_index < len(uploads) and time.monotonic() < deadline:
                upload = uploads[next_index]
                next_index += 1
                outcomes.append(await send(client, upload))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return outcomes, time.perf_counter() - start


def mismatch(outcome: Outcome) -> str:
    """Why this response is not the answer to its own file ("" if it is)."""
    up, body = outcome.upload, outcome.body
    if outcome.status != up.status:
        return f"status {outcome.status}, expected {up.status}"
    if up.status == 200:
        if abs(body["duration"] - up.duration) > 1e-3:
            return f"duration {body['duration']} is not this file's {up.duration:.4f}"
        return ""
    return "" if body.get("error", {}).get("code") == up.error_code else f"error {body.get('error')}"


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"p50 {1000 * p50:.0f} ms  p95 {1000 * p95:.0f} ms  p99 {1000 * p99:.0f} ms  max {1000 * max(values):.0f} ms"


def report(outcomes: list[Outcome], seconds: float, peak_rss_mib: float) -> dict:
    statuses = Counter(o.status for o in outcomes)
    good = [o for o in outcomes if o.upload.status == 200 and o.status == 200]
    wrong = [(o.upload.name, mismatch(o)) for o in outcomes if mismatch(o)]
    refs = [o.upload.text for o in good]
    hyps = [o.body["text"] for o in good]
    summary = {
        "requests": len(outcomes),
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(outcomes) / seconds, 2),
        "audio_seconds_per_second": round(sum(o.upload.duration for o in good) / seconds, 2),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "transport_errors": statuses.get(0, 0),
        "mismatched_responses": len(wrong),
        "good_wer": round(jiwer.wer(refs, hyps), 4) if good else None,
        "good_exact": f"{sum(r == h for r, h in zip(refs, hyps))}/{len(good)}",
        "server_peak_rss_mib": round(peak_rss_mib, 1),
    }
    print(f"{len(outcomes)} requests in {seconds:.1f} s: {summary['throughput_rps']} req/s, "
          f"{summary['audio_seconds_per_second']} s of audio per second")
    print(f"latency, all:  {percentiles([o.latency for o in outcomes])}")
    print(f"latency, good: {percentiles([o.latency for o in good])}")
    print(f"status counts: {summary['status_counts']}  (5xx: {summary['server_errors_5xx']}, "
          f"transport errors: {summary['transport_errors']})")
    print(f"responses not matching their own file: {len(wrong)}" + "".join(f"\n  {n}: {why}" for n, why in wrong[:10]))
    print(f"accuracy on good files: WER {summary['good_wer']}, exact {summary['good_exact']}")
    print(f"server peak RSS: {peak_rss_mib:.0f} MiB")
    return summary


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop sending after this long")
    parser.add_argument("--good-files", type=int, default=40, help="distinct good recordings")
    parser.add_argument("--bad-fraction", type=float, default=0.2, help="share of requests sending a bad file")
    parser.add_argument("--model", help="a shipped model's name or a model directory (default: the shipped digits model)")
    parser.add_argument("--env", action="append", default=[], metavar="ASR_X=V", help="server setting, repeatable")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    goods = good_uploads(args.good_files)
    uploads = schedule(goods, bad_uploads(goods[0].data), args.requests, args.bad_fraction)
    env = dict(item.split("=", 1) for item in args.env)
    if args.model:
        env["ASR_MODELS"] = args.model
    with LiveServer(env) as server:
        outcomes, seconds = asyncio.run(run_load(server.url, uploads, args.concurrency, args.max_seconds))
        summary = report(outcomes, seconds, server.peak_rss_mib())
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["server_errors_5xx"] == 0 and summary["mismatched_responses"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
