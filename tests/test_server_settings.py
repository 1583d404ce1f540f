"""Service settings that change how the model decodes."""

import shutil

import pytest
from pydantic import ValidationError

from asr.model import PRETRAINED_DIR, shipped_models
from server.app import load_and_warm_up
from server.connections import HeaderTimeoutProtocol, uvicorn_config
from server.settings import Settings


def test_vtln_warps_setting_overrides_the_models_own(monkeypatch):
    monkeypatch.delenv("ASR_VTLN_WARPS", raising=False)
    assert load_and_warm_up(PRETRAINED_DIR, Settings()).vtln_warps == (1.0,)  # the shipped model's config: one decode
    monkeypatch.setenv("ASR_VTLN_WARPS", "[0.9, 1.0, 1.1]")
    assert load_and_warm_up(PRETRAINED_DIR, Settings()).vtln_warps == (0.9, 1.0, 1.1)


@pytest.mark.parametrize("value", ["[]", "[2.0]", "[NaN]", "1.0,x"])
def test_bad_vtln_warps_are_refused(monkeypatch, value):
    monkeypatch.setenv("ASR_VTLN_WARPS", value)
    with pytest.raises(ValidationError, match="vtln_warps"):
        Settings()


@pytest.fixture
def digits_copy(tmp_path):
    """The shipped digits model in a directory of another name (so, another model)."""
    return shutil.copytree(PRETRAINED_DIR, tmp_path / "digits-copy")


def test_models_default_to_every_shipped_model_digits_first(monkeypatch):
    monkeypatch.delenv("ASR_MODELS", raising=False)
    models = Settings().models
    assert models[0] == "digits" and sorted(models) == shipped_models()


@pytest.mark.parametrize("form", ["comma", "json"])
def test_models_are_a_comma_or_json_list_named_after_their_directories(monkeypatch, digits_copy, form):
    value = f" digits , {digits_copy}" if form == "comma" else f'["digits", "{digits_copy}"]'
    monkeypatch.setenv("ASR_MODELS", value)
    settings = Settings()
    assert settings.models == ("digits", str(digits_copy))
    assert settings.model_dirs == {"digits": PRETRAINED_DIR, "digits-copy": digits_copy}  # the first is the default


@pytest.mark.parametrize(
    "value, message",
    [
        ("digits,{copy},{copy}/", "two models named `digits-copy`"),  # one directory, spelled twice
        ("digits,{namesake}", "two models named `digits`"),  # a shipped model, and a directory of its name
        ("", "list at least one model"),
        ("[]", "list at least one model"),
        ("digits,,{copy}", "an empty entry"),
        ('["digits",', "not a JSON list"),
    ],
)
def test_bad_model_lists_are_refused_saying_why(monkeypatch, tmp_path, digits_copy, value, message):
    namesake = shutil.copytree(PRETRAINED_DIR, tmp_path / "elsewhere" / "digits")
    monkeypatch.setenv("ASR_MODELS", value.format(copy=digits_copy, namesake=namesake))
    with pytest.raises(ValidationError, match="models") as refused:
        Settings()
    assert message in str(refused.value)


def test_the_replaced_model_dir_setting_is_refused_naming_its_successor(monkeypatch):
    monkeypatch.setenv("ASR_MODEL_DIR", "/srv/my-model")
    with pytest.raises(ValidationError, match="model_dir") as refused:
        Settings()
    assert "replaced by ASR_MODELS, a list of models to serve: set ASR_MODELS=/srv/my-model instead" in str(refused.value)


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
