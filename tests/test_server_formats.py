from dataclasses import dataclass

import pytest

from server.formats import clock, to_srt, to_vtt


@dataclass
class Cue:
    start: float
    end: float
    text: str


@pytest.mark.parametrize(
    "seconds, srt",
    [(0.0, "00:00:00,000"), (1.2345, "00:00:01,234"), (59.9996, "00:01:00,000"), (3725.5, "01:02:05,500"), (-0.01, "00:00:00,000")],
)
def test_clock(seconds, srt):
    assert clock(seconds, ",") == srt
    assert clock(seconds, ".") == srt.replace(",", ".")


def test_srt_numbers_spoken_cues_from_one_and_skips_silent_ones():
    cues = [Cue(0.0, 2.5, "one two"), Cue(2.5, 4.0, " "), Cue(4.0, 61.25, " three ")]
    assert to_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:02,500\none two\n"
        "\n"
        "2\n00:00:04,000 --> 00:01:01,250\nthree\n"
    )


def test_vtt_has_its_header_and_dot_decimals():
    assert to_vtt([Cue(0.0, 1.0, "nine")]) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nnine\n"
    assert to_vtt([]) == "WEBVTT\n\n"
