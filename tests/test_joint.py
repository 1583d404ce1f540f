"""Fine-tuning from a model directory (train.init_model) and joint training of the encoder on other
speech (train.aux_data, asr/joint.py), on real FSDD recordings."""

import csv
import dataclasses

import pytest
import torch

from asr.config import ConfigError, load_config
from asr.joint import AUX_TOKENIZER_DIR
from asr.model import ASRModel, load_model_dir, save_model_dir
from asr.train import Trainer, train

from test_train import make_data_dir, write_config


def aux_manifest(path, fsdd_dir, speaker="nicolas"):
    """Another speaker's takes, transcribed for another task: in characters (the char head spells the word)."""
    words = "zero one two three four five six seven eight nine".split()
    lines = [f'{{"id": "{speaker}_{d}_{k}", "audio": "{fsdd_dir}/recordings/{d}_{speaker}_{k}.wav", '
             f'"text": "{w}"}}' for d, w in enumerate(words) for k in (0, 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fine_tuning_starts_from_the_model_it_is_given(tmp_path, fsdd_dir):
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0,))
    first = train(load_config(write_config(tmp_path / "first", data, max_steps=3, eval_every_steps=1000)))
    model, tokenizer, _ = load_model_dir(first)

    other = make_data_dir(tmp_path / "other", fsdd_dir, speaker="george", takes=(1,))
    trainer = Trainer(load_config(write_config(tmp_path / "tune", other, max_steps=3, eval_every_steps=1000,
                                               init_model=str(first))))
    start = trainer.model.state_dict()
    for key, value in model.state_dict().items():  # weights and CMVN statistics, not estimated again
        assert torch.equal(start[key], value), key
    assert trainer.tokenizer.tokens == tokenizer.tokens
    trainer.run()
    assert not torch.equal(trainer.model.state_dict()["decoder.output.weight"], model.state_dict()["decoder.output.weight"])

    # the network must be the one the weights fit
    with pytest.raises(ConfigError, match=r"init_model: .* another model section: d_model \(64, here 32\)"):
        Trainer(load_config(write_config(tmp_path / "bad", other, init_model=str(first)), {"model.d_model": 32}))
    # its tokenizer must be able to write the new transcripts
    text = other / "text"
    text.write_text(text.read_text().replace(" nine", " niner"))
    with pytest.raises(ConfigError, match=r"cannot write 1 word\(s\) of the training transcripts \(niner\)"):
        Trainer(load_config(write_config(tmp_path / "newword", other, init_model=str(first))))
    text.write_text(text.read_text().replace(" niner", " nine"))
    # a model with a no-speech head starts a run without one (the head is trained after the rest)
    with_head = dataclasses.replace(cfg := load_config(first / "config.yaml"),
                                    model=dataclasses.replace(cfg.model, no_speech_head=True))
    headed = ASRModel(with_head.model, tokenizer.vocab_size, with_head.features.num_mel_bins)
    headed.load_state_dict(model.state_dict(), strict=False)
    save_model_dir(tmp_path / "headed", headed, tokenizer, with_head)
    trainer = Trainer(load_config(write_config(tmp_path / "fromheaded", other, init_model=str(tmp_path / "headed"))))
    assert trainer.model.no_speech_head is None
    assert torch.equal(trainer.model.state_dict()["decoder.output.weight"], model.state_dict()["decoder.output.weight"])


def test_joint_training_learns_the_other_task_and_resumes_exactly(tmp_path, fsdd_dir):
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0,))
    aux = aux_manifest(tmp_path / "aux.jsonl", fsdd_dir)
    settings = dict(eval_every_steps=1000, log_every=1, aux_data=str(aux), aux_weight=0.5, max_frames_per_batch=1500)
    augment = {"augment.noise_prob": 0.5, "augment.time_masks": 1}  # random draws that a resume must repeat
    straight = write_config(tmp_path / "straight", data, max_steps=40, **settings)
    model_dir = train(load_config(straight, augment))
    with open(tmp_path / "straight" / "exp" / "train_log.csv", newline="") as f:
        aux_ctc = [float(r["aux_ctc"]) for r in csv.DictReader(f) if r["aux_ctc"]]
    assert len(aux_ctc) == 40 and sum(aux_ctc[-5:]) < 0.5 * sum(aux_ctc[:5])  # the character head learns
    exp = tmp_path / "straight" / "exp"
    assert (exp / AUX_TOKENIZER_DIR / "tokenizer.json").exists()
    ckpt = torch.load(exp / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["aux_head"]["weight"].shape[0] > 10 and '"aux_batches": 40' in ckpt["state"]
    model, _, _ = load_model_dir(model_dir)  # exported without the head: loads as a plain model
    assert not any(k.startswith("aux") for k in model.state_dict())

    # 25 steps, then 15 more in a new process-like Trainer: the same weights as 40 at once
    halves = write_config(tmp_path / "halves", data, max_steps=25, **settings)
    train(load_config(halves, augment))
    train(load_config(halves, {**augment, "train.max_steps": 40}))
    resumed = torch.load(tmp_path / "halves" / "exp" / "checkpoints" / "last.pt", weights_only=True)
    for part in ("model", "aux_head"):
        for key, value in ckpt[part].items():
            assert torch.equal(resumed[part][key], value), (part, key)


@pytest.mark.parametrize("settings", [{"aux_data": "x.jsonl"}, {"aux_weight": 0.3}, {"aux_data": "x", "aux_weight": -1.0}])
def test_aux_data_and_weight_go_together(tmp_path, fsdd_dir, settings):
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0,))
    with pytest.raises(ConfigError, match="train.aux_data and train.aux_weight go together"):
        load_config(write_config(tmp_path, data, **settings))
