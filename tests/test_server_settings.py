"""Service settings that change how the model decodes."""

import pytest
from pydantic import ValidationError

from server.app import load_and_warm_up
from server.connections import HeaderTimeoutProtocol, uvicorn_config
from server.settings import Settings


def test_vtln_warps_setting_overrides_the_models_own(monkeypatch):
    monkeypatch.delenv("ASR_VTLN_WARPS", raising=False)
    assert len(load_and_warm_up(Settings()).vtln_warps) > 1  # the shipped model decodes with several warps
    monkeypatch.setenv("ASR_VTLN_WARPS", "[1.0]")
    assert load_and_warm_up(Settings()).vtln_warps == (1.0,)


@pytest.mark.parametrize("value", ["[]", "[2.0]", "[NaN]", "1.0,x"])
def test_bad_vtln_warps_are_refused(monkeypatch, value):
    monkeypatch.setenv("ASR_VTLN_WARPS", value)
    with pytest.raises(ValidationError, match="vtln_warps"):
        Settings()


def test_limits_have_safe_defaults_and_refuse_nonsense(monkeypatch):
    for name in ("DECODE_WORKERS", "MAX_DECODED_SAMPLES", "MAX_UPLOADS", "BODY_TIMEOUT_S", "HEADER_TIMEOUT_S"):
        monkeypatch.delenv(f"ASR_{name}", raising=False)
    settings = Settings()
    assert settings.decode_workers == 2 and settings.max_uploads == 64
    assert settings.max_decoded_samples == 900 * 48_000 * 2  # 900 s of 48 kHz stereo
    assert settings.body_timeout_s == 30 and settings.header_timeout_s == 10
    for name, value in [("DECODE_WORKERS", "0"), ("MAX_UPLOADS", "0"), ("BODY_TIMEOUT_S", "0"), ("MAX_HEADER_KB", "-1")]:
        monkeypatch.setenv(f"ASR_{name}", value)
        with pytest.raises(ValidationError, match=name.lower()):
            Settings()
        monkeypatch.delenv(f"ASR_{name}")


def test_uvicorn_runs_with_the_connection_limits_of_the_settings():
    settings = Settings(header_timeout_s=3.5, max_header_kb=32, keep_alive_s=7, max_connections=99)
    config = uvicorn_config(object(), settings, port=1234)
    assert issubclass(config.http, HeaderTimeoutProtocol) and config.http.header_timeout_s == 3.5
    assert config.h11_max_incomplete_event_size == 32 * 1024
    assert config.timeout_keep_alive == 7 and config.limit_concurrency == 99 and config.port == 1234
    assert HeaderTimeoutProtocol.header_timeout_s == Settings().header_timeout_s  # the class itself keeps the default
