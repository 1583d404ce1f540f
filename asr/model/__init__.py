"""Encoder-decoder Transformer ASR model: one file per building block, wired in asr_model.py."""

from asr.model.asr_model import ASRModel, LossOutput
from asr.model.io import PRETRAINED_DIR, load_model_dir, model_name, model_path, save_model_dir, shipped_models

__all__ = ["ASRModel", "LossOutput", "PRETRAINED_DIR", "load_model_dir", "model_name", "model_path", "save_model_dir", "shipped_models"]
