"""Typed config from YAML: retired keys of older config files, the VTLN warp and attention window checks."""

import re

import pytest
import yaml

from asr.config import ConfigError, InferenceConfig, check_vtln_warps, experiment_config, load_config, save_config
from asr.model import PRETRAINED_DIR


def test_retired_keys_at_their_no_effect_values_are_dropped(tmp_path):
    """Config files written before a feature was removed still load, to the same config."""
    old = yaml.safe_load((PRETRAINED_DIR / "config.yaml").read_text())
    old["features"]["utterance_cmn"] = False  # the keys as the first shipped model's config.yaml had them
    old["model"]["n_mels"] = old["features"]["num_mel_bins"]
    old["loss"].update(guided_layers=None, guided_heads=None, guided_decay_steps=0)
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    cfg = load_config(tmp_path / "old.yaml")
    assert cfg == load_config(PRETRAINED_DIR / "config.yaml")
    save_config(cfg, tmp_path / "now.yaml")
    assert "guided_decay_steps" not in (tmp_path / "now.yaml").read_text() and "n_mels" not in (tmp_path / "now.yaml").read_text()
    assert load_config(tmp_path / "now.yaml") == cfg


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("features", "utterance_cmn", True), ("loss", "guided_layers", [0]), ("loss", "guided_heads", [1, 2]),
     ("loss", "guided_decay_steps", 500), ("train", "amp", False)],
)
def test_retired_keys_that_ask_for_something_are_refused(tmp_path, section, key, value):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({section: {key: value}}))
    with pytest.raises(ConfigError, match=re.escape(f"{section}.{key} was removed")) as err:
        load_config(path)
    assert str(err.value).endswith(f"got {value!r}")


def test_unknown_keys_are_still_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  guided_sigmaa: 0.3\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(path)


def test_vtln_warps_one_check():
    assert check_vtln_warps([0.9, 1.0, 1.5]) == (0.9, 1.0, 1.5)
    for bad in ([], [0.4], [1.0, 1.6], [float("nan")]):
        with pytest.raises(ConfigError, match=r"^--vtln-warps: need one or more warps in \[0\.5, 1\.5\]"):
            check_vtln_warps(bad, "--vtln-warps")
        with pytest.raises(ConfigError, match=r"^inference\.vtln_warps: need one or more"):
            InferenceConfig(vtln_warps=tuple(bad))


def test_attention_window_from_yaml_and_its_checks():
    """Off unless a config asks for it (older configs have no such key); the EOS penalty needs it."""
    assert experiment_config({}).inference.attention_window == () and InferenceConfig().eos_penalty == 0.0
    inference = experiment_config({"inference": {"attention_window": [4, 24], "eos_penalty": 2.5}}).inference
    assert (inference.attention_window, inference.eos_penalty) == ((4, 24), 2.5)
    for bad in ([24, 4], [4], [4, 24, 30], [0.5, 2]):
        with pytest.raises(ConfigError, match=r"inference\.attention_window: "):
            experiment_config({"inference": {"attention_window": bad}})
    with pytest.raises(ConfigError, match=r"^inference\.eos_penalty: 2\.5 needs an attention window"):
        experiment_config({"inference": {"eos_penalty": 2.5}})


def test_pause_seconds_from_yaml_and_its_checks():
    assert experiment_config({}).inference.pause_seconds == 0.0
    assert experiment_config({"inference": {"pause_seconds": 0.2}}).inference.pause_seconds == 0.2
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match=r"inference\.pause_seconds: expected 0 to 1 seconds"):
            experiment_config({"inference": {"pause_seconds": bad}})


def test_min_tokens_from_yaml_and_its_checks():
    """0 unless a config asks for it; a whole number >= 0."""
    assert experiment_config({}).inference.min_tokens == 0
    assert experiment_config({"inference": {"min_tokens": 1}}).inference.min_tokens == 1
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ConfigError, match=r"inference\.min_tokens: expected"):
            experiment_config({"inference": {"min_tokens": bad}})


def test_min_confidence_from_yaml_and_its_checks():
    assert experiment_config({}).inference.min_confidence == 0.0
    assert experiment_config({"inference": {"min_confidence": 0.2}}).inference.min_confidence == 0.2
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match=r"inference\.min_confidence: expected 0 <= value < 1"):
            experiment_config({"inference": {"min_confidence": bad}})
