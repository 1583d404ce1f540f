"""A model directory: config.yaml + model.safetensors + tokenizer files.

This is what training exports, what the repo ships in asr/pretrained/, and what the
CLI and the server load. Weights are safetensors: loading never unpickles objects.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from asr.config import ConfigError, ExperimentConfig, load_config, save_config
from asr.model.asr_model import ASRModel
from asr.tokenizer import Tokenizer

PRETRAINED_ROOT = Path(__file__).resolve().parents[1] / "pretrained"
PRETRAINED_DIR = PRETRAINED_ROOT / "digits"  # the default model


def shipped_models() -> list[str]:
    """Names of the models shipped in asr/pretrained/ (a model's name is its directory's name)."""
    return sorted(p.parent.name for p in PRETRAINED_ROOT.glob("*/model.safetensors"))


def model_path(model: str | Path | None = None) -> Path:
    """A model directory, or the name of a shipped model ("digits"), -> its directory; None = the default.

    A directory that exists wins over a shipped model of the same name.
    """
    if model is None:
        return PRETRAINED_DIR
    path = Path(model)
    return PRETRAINED_ROOT / path.name if not path.is_dir() and str(model) in shipped_models() else path


def model_name(model: str | Path | None = None) -> str:
    """A model's name, as transcripts and the service call it: a shipped model's name, else its directory's."""
    return model_path(model).resolve().name


def save_model_dir(
    path: str | Path, model: ASRModel, tokenizer: Tokenizer, cfg: ExperimentConfig, carry_from: str | Path | None = None
) -> Path:
    """Write the model directory atomically: into a temporary sibling, then rename over `path`.

    `carry_from`: the model directory this one was made from (a head or LM added to it); its other
    files (e.g. the training's dev_wer.json) come along instead of being lost when `path` is the same.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model directory is meant to be shared
    if carry_from is not None:
        for f in Path(carry_from).iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)  # config, weights and tokenizer are overwritten below
    save_config(cfg, tmp / "config.yaml")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    tokenizer.save(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def load_model_dir(path: str | Path | None = None, device: str = "cpu") -> tuple[ASRModel, Tokenizer, ExperimentConfig]:
    """Load (model in eval mode, tokenizer, config) from a model directory or a shipped model's
    name (`model_path`); None = the default shipped model."""
    path = model_path(path)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(
            f"{path} is not a model directory (no model.safetensors) nor the name of a shipped model "
            f"({', '.join(shipped_models())})"
        )
    cfg = load_config(path / "config.yaml")
    tokenizer = Tokenizer.load(path)
    model = ASRModel(cfg.model, tokenizer.vocab_size, cfg.features.num_mel_bins)
    model.load_state_dict(load_file(str(weights), device="cpu"))
    return model.to(device).eval(), tokenizer, cfg
