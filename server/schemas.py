"""Request options and response bodies of the HTTP API (pydantic models, shown in /docs)."""

from __future__ import annotations

import math
from typing import Literal, Optional

from pydantic import BaseModel, Field, field_validator

Decoder = Literal["beam", "greedy", "ctc"]  # attention beam search, attention greedy, CTC greedy
Format = Literal["json", "text", "srt", "vtt"]
OpenAIFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]


def finite_confidence(value: float) -> float:
    """A confidence as answered: in [0, 1], and 0.0 where the model's scores were not finite
    (JSON has no NaN, so pydantic would answer null)."""
    value = float(value)
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0



class TranscribeOptions(BaseModel):
    """Options of POST /transcribe, from form fields or query parameters."""

    model: Optional[str] = Field(
        None, description="the name of a model this server runs (GET /v1/models); absent or `whisper-1`: the "
        "default (the first of ASR_MODELS); any other name is a 404 `model_not_found`",
    )
    beam_size: int = Field(5, ge=1, le=32, description="beam width of the `beam` decoder")
    decoder: Decoder = Field("beam", description="`beam`, `greedy`, or `ctc` (fast; needs a CTC head)")
    format: Format = Field("json", description="answer as `json`, plain `text`, `srt` or `vtt` subtitles")
    timestamps: bool = Field(False, description="add word start/end times")
    attention: bool = Field(False, description="add the cross-attention matrix (for plots)")


class SegmentOut(BaseModel):
    start: float  # seconds
    end: float
    text: str


class WordOut(BaseModel):
    word: str
    start: float  # seconds
    end: float


class AttentionOut(BaseModel):
    tokens: list[str]  # one row of `weights` per output token
    weights: list[list[float]]  # (U, T'): rows sum to 1 over encoder frames spanning the audio


class TranscriptionOut(BaseModel):
    text: str
    duration: float = Field(description="seconds of audio")
    processing_time: float = Field(description="seconds spent decoding and transcribing")
    model: str = Field(description="the name of the model that transcribed it")
    confidence: float = Field(
        ge=0, le=1, description="in [0, 1]; always a number (0 when the model's scores were not finite)"
    )
    segments: list[SegmentOut]
    words: Optional[list[WordOut]] = Field(None, description="when `timestamps` was asked")
    timing_source: Optional[Literal["attention", "ctc"]] = Field(
        None, description="where word times come from: cross-attention or CTC forced alignment"
    )
    attention: Optional[AttentionOut] = Field(None, description="when `attention` was asked")

    @field_validator("confidence", mode="before")
    @classmethod
    def _finite_confidence(cls, value: float) -> float:
        return finite_confidence(value)


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="`invalid_request_error` for input the client got wrong, else one per status")
    param: Optional[str] = Field(None, description="the request field at fault")
    code: Optional[str] = Field(None, description="a stable reason: `audio_too_short`, `model_not_found`, ...")


class ErrorOut(BaseModel):
    error: ErrorDetail


class StatusOut(BaseModel):
    status: str
    model: Optional[str] = Field(None, description="the default model: what a request naming none gets")
    models: Optional[list[str]] = Field(None, description="every model the server runs, the default first")


# --- OpenAI audio transcription API (https://platform.openai.com/docs/api-reference/audio) ---


class DurationUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float = Field(description="seconds of audio")


class OpenAITranscription(BaseModel):
    text: str
    usage: DurationUsage


class OpenAISegment(BaseModel):
    id: int
    seek: int = Field(description="start in 10 ms frames, as Whisper counts: round(start * 100)")
    start: float
    end: float
    text: str
    tokens: list[int] = Field(description="the segment's token ids, in the model's own vocabulary")
    temperature: float = Field(0.0, description="always 0: the search (beam or greedy) is deterministic")
    avg_logprob: float = Field(
        description="mean log-probability per token of the attention decoder (at least -20); for a piece "
        "judged to hold no speech, log P(no speech), the probability of its empty text"
    )
    compression_ratio: float = Field(description="UTF-8 bytes of the text over its zlib-compressed bytes")
    no_speech_prob: float = Field(description="P(no speech) from the model's no-speech head (0 without one)")


class OpenAIVerboseTranscription(BaseModel):
    task: Literal["transcribe", "translate"]
    language: str
    duration: float
    text: str
    segments: Optional[list[OpenAISegment]] = None
    words: Optional[list[WordOut]] = None
    usage: DurationUsage


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="when the model's weights were written (Unix seconds)")
    owned_by: str


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class TranscriptTextDelta(BaseModel):
    """A server-sent event of `stream=true`: the text of the next piece of audio."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TranscriptTextDone(BaseModel):
    """The last server-sent event of `stream=true`: the whole text (the deltas joined)."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str


ERROR_RESPONSES = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "bad input: missing field, bad option, audio that cannot be decoded",
        401: "missing or wrong API key (when one is configured)",
        404: "no model of that name runs here (`model_not_found`)",
        413: "upload or audio too large",
        503: "model loading, or queue full (see Retry-After)",
    }.items()
}
