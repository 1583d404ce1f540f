"""Service configuration, read from `ASR_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from asr.config import VTLN_WARP_RANGE


class Settings(BaseSettings):
    """Every field can be set by an environment variable: `model_dir` <- `ASR_MODEL_DIR`, etc."""

    model_config = SettingsConfigDict(env_prefix="ASR_", frozen=True, protected_namespaces=())

    model_dir: Optional[Path] = None  # None: the model shipped in asr/pretrained/digits
    device: str = "cpu"
    max_upload_mb: float = Field(64.0, gt=0)  # request bodies above this get 413
    max_audio_seconds: float = Field(900.0, gt=0)  # longer audio gets 413
    workers: int = Field(1, ge=1)  # inference threads, each running one batch at a time
    queue_size: int = Field(32, ge=1)  # transcription requests admitted at once; more get 503
    max_batch_size: int = Field(8, ge=1)  # short requests decoded together (micro-batching)
    batch_wait_ms: float = Field(5.0, ge=0)  # how long a batch waits for company when idle
    torch_threads: int = Field(0, ge=0)  # torch intra-op threads; 0 keeps torch's default
    # test-time VTLN warps, e.g. [1.0] (JSON) for one decode per request: faster, a little less accurate;
    # None keeps the model's inference.vtln_warps
    vtln_warps: Optional[tuple[Annotated[float, Field(ge=VTLN_WARP_RANGE[0], le=VTLN_WARP_RANGE[1])], ...]] = Field(None, min_length=1)
    api_key: Optional[SecretStr] = None  # if set, transcription routes need `Authorization: Bearer <key>`
    retry_after_s: int = Field(1, ge=1)  # Retry-After sent with 503

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
