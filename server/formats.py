"""Transcript -> plain text or subtitles (SRT, WebVTT): the text answers both APIs share."""

from __future__ import annotations

from typing import Iterable, Optional, Protocol

from fastapi.responses import PlainTextResponse


class Timed(Protocol):
    start: float  # seconds
    end: float
    text: str


def clock(seconds: float, decimal: str) -> str:
    """3725.5 -> "01:02:05,500" (SRT, decimal ",") or "01:02:05.500" (WebVTT, decimal ".")."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def cues(segments: Iterable[Timed], decimal: str) -> list[str]:
    spoken = [s for s in segments if s.text.strip()]
    return [
        f"{clock(s.start, decimal)} --> {clock(s.end, decimal)}\n{s.text.strip()}\n" for s in spoken
    ]


def to_srt(segments: Iterable[Timed]) -> str:
    return "\n".join(f"{i}\n{cue}" for i, cue in enumerate(cues(segments, ","), start=1))


def to_vtt(segments: Iterable[Timed]) -> str:
    return "WEBVTT\n\n" + "\n".join(cues(segments, "."))


def text_response(text: str, segments: Iterable[Timed], format: str) -> Optional[PlainTextResponse]:
    """The answer for format "text", "srt" or "vtt"; None for the JSON formats."""
    if format == "text":
        return PlainTextResponse(text + "\n")
    if format == "srt":
        return PlainTextResponse(to_srt(segments))
    if format == "vtt":
        return PlainTextResponse(to_vtt(segments), media_type="text/vtt")
    return None
