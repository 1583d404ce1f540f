"""Service configuration, read from `ASR_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from asr.config import check_vtln_warps


class Settings(BaseSettings):
    """Every field can be set by an environment variable: `model_dir` <- `ASR_MODEL_DIR`, etc."""

    model_config = SettingsConfigDict(env_prefix="ASR_", frozen=True, protected_namespaces=())

    model_dir: Optional[Path] = None  # None: the model shipped in asr/pretrained/digits
    device: str = "cpu"
    torch_threads: int = Field(0, ge=0)  # torch intra-op threads; 0 keeps torch's default
    # test-time VTLN warps, e.g. [1.0] (JSON) for one decode per request: faster, a little less accurate;
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

    @field_validator("vtln_warps")
    @classmethod
    def _one_check_of_vtln_warps(cls, warps: Optional[tuple[float, ...]]) -> Optional[tuple[float, ...]]:
        return None if warps is None else check_vtln_warps(warps, "ASR_VTLN_WARPS")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
