"""The form fields of the OpenAI audio API, checked against what the loaded model can do.

Each field is honoured or refused with a 400 that names it (`param`) and says why (`code`);
none is accepted and silently ignored:
- `model`: the name of a model this server runs picks it; absent or `whisper-1` (the name
  OpenAI clients default to) mean the default model (the first of ASR_MODELS); any other name
  is a 404 `model_not_found` (ServiceState.model in server/service.py, as on POST /transcribe).
- `language`: absent, `en` or `english` (any case): the models this service runs are English;
  any other is `unsupported_language`.
- `temperature`: absent or 0. The search (beam or greedy) is deterministic: with no sampling
  there is nothing a temperature could change (`unsupported_value`).
- `prompt`: absent or empty. The decoder takes no text context (`unsupported_parameter`).
- `include[]`: refused (`unsupported_parameter`): `logprobs` would need one log-probability per
  token, and the beam search keeps one score per hypothesis.
- `timestamp_granularities[]` (also without `[]`): `segment` and/or `word`, with
  `response_format=verbose_json` only, the one format that has room for them.
- `stream`: with `response_format` json or text, the formats whose text can come in pieces.
- `chunking_strategy`: `auto` only (long audio is always cut at quiet points).
- anything else: `unknown_parameter`.
"""

from __future__ import annotations

from typing import Iterable, Optional

from server.errors import ApiError

LANGUAGES = ("en", "english")


def refuse_unknown_fields(names: Iterable[str], accepted: frozenset[str]) -> None:
    unknown = sorted(set(names) - accepted)
    if unknown:
        raise ApiError(
            400, f"unknown parameter `{unknown[0]}`: this endpoint takes {', '.join(sorted(accepted))}",
            param=unknown[0].removesuffix("[]"), code="unknown_parameter",
        )


def check_language(language: Optional[str]) -> None:
    if language is None or language.strip().lower() in LANGUAGES:
        return
    raise ApiError(
        400, f"language `{language}` is not supported: the model transcribes English; send `en` or leave it out",
        param="language", code="unsupported_language",
    )


def check_deterministic(temperature: Optional[float], prompt: Optional[str]) -> None:
    """Refuse what only a sampling or prompted decoder could honour."""
    if temperature is not None and temperature != 0:
        raise ApiError(
            400, f"temperature {temperature:g} cannot be honoured: decoding is a deterministic beam or greedy "
            "search, with no sampling; send 0 or leave it out", param="temperature", code="unsupported_value",
        )
    if prompt:
        raise ApiError(
            400, "a prompt cannot be honoured: the decoder takes no text context; leave `prompt` out",
            param="prompt", code="unsupported_parameter",
        )


def refuse_include(include: list[str]) -> None:
    if include:
        raise ApiError(
            400, f"include {include} is not offered: `logprobs` needs a log-probability per token, and the "
            "beam search keeps one score per hypothesis", param="include", code="unsupported_parameter",
        )


def check_granularities(granularities: list[str], response_format: str) -> None:
    if granularities and response_format != "verbose_json":
        raise ApiError(
            400, f"timestamp_granularities need response_format=verbose_json (got {response_format})",
            param="timestamp_granularities", code="unsupported_value",
        )


def check_stream(stream: bool, response_format: str) -> None:
    if stream and response_format not in ("json", "text"):
        raise ApiError(
            400, f"stream=true sends text events: use response_format json or text (got {response_format})",
            param="stream", code="unsupported_value",
        )
