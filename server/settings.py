"""Service configuration, read from `ASR_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional, Sequence

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asr.config import ConfigError, check_vtln_warps
from asr.model import PRETRAINED_DIR, model_name, model_path, shipped_models


def every_shipped_model() -> tuple[str, ...]:
    """The default of `models`: every model in asr/pretrained/, the library's default (digits) first."""
    return (PRETRAINED_DIR.name, *(name for name in shipped_models() if name != PRETRAINED_DIR.name))


def named_models(models: Sequence[str]) -> dict[str, Path]:
    """Each model's name (asr.model.model_name) -> its directory, in the order given.

    ValueError for an empty list or entry, and for two entries of one name: a request names
    the model it wants, so each name must mean one model.
    """
    if not models:
        raise ValueError(f"list at least one model: a shipped model's name ({', '.join(shipped_models())}) or a directory")
    named: dict[str, Path] = {}
    for model in models:
        if not model.strip():
            raise ValueError(f"an empty entry in {list(models)}: give a shipped model's name or a directory")
        name = model_name(model)
        if name in named:
            raise ValueError(
                f"two models named `{name}` ({named[name]} and {model_path(model)}): a model is named after its "
                "directory (or is a shipped model's name); list each once, or rename one of the directories"
            )
        named[name] = model_path(model)
    return named


class Settings(BaseSettings):
    """Every field can be set by an environment variable: `models` <- `ASR_MODELS`, etc."""

    model_config = SettingsConfigDict(env_prefix="ASR_", frozen=True, protected_namespaces=())

    # The models to serve: shipped models' names (asr/pretrained/NAME) or model directories, as
    # `digits,/srv/models/mine` or a JSON list; the first is the default. A request picks one by
    # its name (the shipped name, or the directory's name), so names must differ.
    models: Annotated[tuple[str, ...], NoDecode] = Field(default_factory=every_shipped_model)
    # Replaced by `models`. Still read, to refuse it: ignored, it would silently serve another model.
    model_dir: Optional[str] = Field(None, exclude=True)
    device: str = "cpu"
    torch_threads: int = Field(0, ge=0)  # torch intra-op threads; 0 keeps torch's default
    # test-time VTLN warps, e.g. [0.9,0.95,1.0,1.05,1.1] (JSON): one decode per warp, the best-scoring kept;
    # None keeps the model's inference.vtln_warps; checked by asr.config.check_vtln_warps, as in the config and the CLI
    vtln_warps: Optional[tuple[float, ...]] = None
    api_key: Optional[SecretStr] = None  # if set, transcription routes need `Authorization: Bearer <key>`

    # What one upload may cost. Each limit is checked before the work it bounds (server/guard.py,
    # asr/audio.py), so a refused request costs next to nothing.
    max_upload_mb: float = Field(64.0, gt=0)  # request bodies above this get 413
    max_audio_seconds: float = Field(900.0, gt=0)  # longer audio gets 413
    # channels x frames a file may hold, checked in its header before decoding (413 above): a small
    # FLAC can declare minutes of 384 kHz x 8 channels. Default: 900 s of 48 kHz stereo.
    max_decoded_samples: int = Field(900 * 48_000 * 2, ge=1)

    # How many requests are in each stage at once. An upload holds one of `max_uploads` places while
    # its body arrives, then one of `queue_size` slots until it is answered (decoding, inference);
    # over either bound the answer is 503 + Retry-After, so slow uploads never take a slot.
    max_uploads: int = Field(64, ge=1)  # transcription bodies arriving at once
    body_timeout_s: float = Field(30.0, gt=0)  # the whole body must arrive within this of the headers; else 408
    queue_size: int = Field(32, ge=1)  # transcription requests admitted (body received) at once
    decode_workers: int = Field(2, ge=1)  # threads decoding uploads to waveforms (bounds decoding memory)
    workers: int = Field(1, ge=1)  # inference threads, each running one batch at a time
    max_batch_size: int = Field(8, ge=1)  # short requests decoded together (micro-batching)
    batch_wait_ms: float = Field(5.0, ge=0)  # how long a batch waits for company when idle
    retry_after_s: int = Field(1, ge=1)  # Retry-After sent with 503

    # Connections, enforced by uvicorn as `asr serve` runs it (server/connections.py).
    header_timeout_s: float = Field(10.0, gt=0)  # a connection must send a complete request head within this
    # request headers above this get 431 (server/guard.py); a request head still incomplete past it
    # gets 400 and the connection closed (uvicorn's h11 limit), so an endless head is never buffered
    max_header_kb: int = Field(64, ge=1)
    keep_alive_s: int = Field(5, ge=1)  # an idle keep-alive connection is closed after this
    max_connections: int = Field(256, ge=1)  # connections or requests at once; above it uvicorn answers 503

    @field_validator("models", mode="before")
    @classmethod
    def _comma_or_json_list(cls, models: object) -> object:
        """ASR_MODELS as given (NoDecode: pydantic-settings would read it as JSON only)."""
        if isinstance(models, str):
            if models.lstrip().startswith("["):
                try:
                    return json.loads(models)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON list ({exc}); or give the models comma-separated") from None
            return [m.strip() for m in models.split(",")] if models.strip() else []
        return models

    @field_validator("models")
    @classmethod
    def _each_name_once(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        named_models(models)
        return models

    @field_validator("model_dir")
    @classmethod
    def _replaced_by_models(cls, model_dir: Optional[str]) -> None:
        if model_dir is not None:
            raise ValueError(f"replaced by ASR_MODELS, a list of models to serve: set ASR_MODELS={model_dir} instead")
        return None

    @field_validator("vtln_warps")
    @classmethod
    def _one_check_of_vtln_warps(cls, warps: Optional[tuple[float, ...]]) -> Optional[tuple[float, ...]]:
        return None if warps is None else check_vtln_warps(warps, "ASR_VTLN_WARPS")

    @property
    def model_dirs(self) -> dict[str, Path]:
        """Name -> directory of each model to serve; the first is the default."""
        return named_models(self.models)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with `overrides` (what `asr serve` was given); a ConfigError of
    one line naming each setting at fault (`ASR_MODELS: two models named ...`) if they cannot be used."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = f"ASR_{str(error['loc'][0]).upper()}"
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ').removeprefix(f'{name}: ')}")
        raise ConfigError("; ".join(problems)) from None
