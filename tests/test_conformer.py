"""The Conformer encoder (model.encoder: conformer): it trains, and its model directory loads back
as the same network."""

import csv
from statistics import fmean

import pytest
import torch
from test_train import make_data_dir, write_config

from asr.config import ConfigError, ModelConfig, load_config
from asr.model import load_model_dir
from asr.model.conformer import ConformerEncoder
from asr.train import train


def test_conformer_trains_and_round_trips_through_its_model_directory(tmp_path, fsdd_dir):
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0,))
    config = write_config(tmp_path, data, max_steps=20, log_every=1, eval_every_steps=1000, dev_max_utts=4)
    model_dir = train(load_config(config, {"model.encoder": "conformer", "model.conformer_kernel": 7}))
    with open(tmp_path / "exp" / "train_log.csv", newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f) if row["loss"]]
    assert len(losses) == 20 and fmean(losses[-5:]) < 0.5 * fmean(losses[:5])

    model, _, cfg = load_model_dir(model_dir)
    assert isinstance(model.encoder, ConformerEncoder) and cfg.model.encoder == "conformer"
    trained = torch.load(tmp_path / "exp" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert any("running_mean" in key for key in trained)  # the batch-norm statistics travel too
    loaded = model.state_dict()
    for key, value in trained.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize(("settings", "message"), [
    ({"encoder": "lstm"}, "model.encoder: expected one of transformer, conformer"),
    ({"encoder": "conformer", "conformer_kernel": 8}, "model.conformer_kernel: expected an odd width"),
])
def test_encoder_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**settings)
