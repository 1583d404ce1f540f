"""Shapes, masks and the causal property of the encoder-decoder."""

import re

import pytest
import torch
import yaml

from asr.config import ConfigError, ExperimentConfig, FeatureConfig, LossConfig, ModelConfig
from asr.model import ASRModel, load_model_dir, save_model_dir
from asr.model.asr_model import decoder_io
from asr.losses import IGNORE_INDEX
from asr.tokenizer import EOS_ID, PAD_ID, SOS_ID, Tokenizer

CFG = ModelConfig(d_model=32, n_heads=2, d_ff=64, encoder_layers=2, decoder_layers=2, conv_channels=8, dropout=0.0)
V = 12


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ASRModel(CFG, V, n_mels=80).eval()


def test_encoder_shapes_and_lengths(model):
    feats = torch.randn(2, 101, 80)
    enc, lens = model.encode(feats, torch.tensor([101, 60]))
    assert enc.shape == (2, 24, 32)  # ((101 - 1) // 2 - 1) // 2 = 24
    assert lens.tolist() == [24, 14]


def test_encoder_ignores_padding(model):
    """Frames past an utterance's length must not change its encoding."""
    feats = torch.randn(1, 60, 80)
    enc_short, _ = model.encode(feats, torch.tensor([60]))
    padded = torch.cat([feats, 100 * torch.randn(1, 41, 80)], dim=1)
    enc_padded, lens = model.encode(padded, torch.tensor([60]))
    # Convolution windows at the boundary see padding, so compare the interior frames.
    assert torch.allclose(enc_short[0, :12], enc_padded[0, :12], atol=1e-4)


def test_causal_mask_hides_the_future(model):
    enc, lens = model.encode(torch.randn(1, 80, 80), torch.tensor([80]))
    tokens = torch.tensor([[SOS_ID, 5, 6, 7, 8]])
    logits, _ = model.forward_decoder(enc, lens, tokens)
    changed = tokens.clone()
    changed[0, 3:] = torch.tensor([9, 10])
    logits_changed, _ = model.forward_decoder(enc, lens, changed)
    assert torch.allclose(logits[0, :3], logits_changed[0, :3], atol=1e-5)  # past positions: same
    assert not torch.allclose(logits[0, 3:], logits_changed[0, 3:], atol=1e-3)  # later ones see the change


def test_cross_attention_is_a_distribution_over_real_frames(model):
    feats = torch.randn(2, 101, 80)
    enc, lens = model.encode(feats, torch.tensor([101, 40]))
    _, attn = model.forward_decoder(enc, lens, torch.tensor([[SOS_ID, 5], [SOS_ID, 6]]), need_attention=True)
    assert len(attn) == CFG.decoder_layers
    a = attn[0]  # (B, H, U, T')
    assert a.shape == (2, 2, 2, 24)
    assert torch.allclose(a.sum(-1), torch.ones(2, 2, 2), atol=1e-5)
    assert a[1, :, :, lens[1]:].abs().max() == 0  # padded frames get no attention


def test_fused_and_explicit_attention_agree(model):
    enc, lens = model.encode(torch.randn(2, 90, 80), torch.tensor([90, 50]))
    tokens = torch.tensor([[SOS_ID, 5, 6], [SOS_ID, 7, 8]])
    fused, _ = model.forward_decoder(enc, lens, tokens, need_attention=False)
    explicit, _ = model.forward_decoder(enc, lens, tokens, need_attention=True)
    assert torch.allclose(fused, explicit, atol=1e-5)


def test_decoder_io_shifts_and_marks_eos():
    tokens = torch.tensor([[5, 6, 7], [8, PAD_ID, PAD_ID]])
    inputs, targets = decoder_io(tokens, torch.tensor([3, 1]))
    assert inputs.tolist() == [[SOS_ID, 5, 6, 7], [SOS_ID, 8, PAD_ID, PAD_ID]]
    assert targets.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, IGNORE_INDEX, IGNORE_INDEX]]


def test_forward_losses_backpropagate(model):
    model.train()
    feats, lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    tokens, tlens = torch.tensor([[5, 6, 7], [8, 9, PAD_ID]]), torch.tensor([3, 2])
    out = model(feats, lens, tokens, tlens, LossConfig(guided_weight=1.0), sampling_prob=0.5)
    assert out.ctc > 0 and out.attention_ce > 0 and 0 < out.guided < 1
    out.loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    off = model(feats, lens, tokens, tlens, LossConfig(guided_weight=0.0))
    assert off.guided == 0


def test_scheduled_sampling_replaces_only_real_positions(model):
    enc, lens = model.encode(torch.randn(2, 120, 80), torch.tensor([120, 90]))
    inputs, targets = decoder_io(torch.tensor([[5, 6, 7], [8, PAD_ID, PAD_ID]]), torch.tensor([3, 1]))
    torch.manual_seed(0)
    never = model._scheduled_sampling_inputs(enc, lens, inputs, targets, 0.0)
    always = model._scheduled_sampling_inputs(enc, lens, inputs, targets, 1.0)
    assert torch.equal(never, inputs)
    logits, _ = model.forward_decoder(enc, lens, inputs)
    predicted = logits.argmax(-1)
    assert torch.equal(always[0, 1:], predicted[0, :-1])  # all of utterance 0 replaced
    assert always[0, 0] == SOS_ID
    assert torch.equal(always[1, 2:], inputs[1, 2:])  # padding of utterance 1 untouched


def test_guide_follows_the_speech_span_in_encoder_frames(model):
    feats, lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    tokens, tlens = torch.tensor([[5, 6, 7], [8, 9, PAD_ID]]), torch.tensor([3, 2])
    whole = torch.tensor([[0, 120], [0, 90]])  # feature frames
    default = model(feats, lens, tokens, tlens, LossConfig(guided_weight=1.0))
    spanned = model(feats, lens, tokens, tlens, LossConfig(guided_weight=1.0), speech=whole)
    torch.testing.assert_close(default.guided, spanned.guided)
    padded = model(feats, lens, tokens, tlens, LossConfig(guided_weight=1.0), speech=torch.tensor([[40, 80], [8, 30]]))
    assert padded.guided != default.guided
    spans = model.encoder_frames(torch.tensor([[3, 119], [4, 90]]), torch.tensor([28, 21]))
    assert spans.tolist() == [[0, 28], [1, 21]]


def test_model_directory_takes_its_input_size_from_the_features(tmp_path):
    """The model reads features.num_mel_bins; an older config.yaml's model.n_mels must agree with it."""
    cfg = ExperimentConfig(features=FeatureConfig(num_mel_bins=40), model=CFG)
    tok = Tokenizer.train("word", ["one two three"])
    save_model_dir(tmp_path / "m", ASRModel(CFG, tok.vocab_size, cfg.features.num_mel_bins), tok, cfg)
    model, _, _ = load_model_dir(tmp_path / "m")
    assert model.encoder.cmvn.mean.shape == (40,)
    assert model.encode(torch.randn(1, 50, 40), torch.tensor([50]))[0].shape == (1, 11, CFG.d_model)

    old = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())
    old["model"]["n_mels"] = 40  # as files written before the model took it from the features
    (tmp_path / "m" / "config.yaml").write_text(yaml.safe_dump(old))
    assert load_model_dir(tmp_path / "m")[2] == cfg
    old["model"]["n_mels"] = 80
    (tmp_path / "m" / "config.yaml").write_text(yaml.safe_dump(old))
    message = "model.n_mels was removed (the model's input size is features.num_mel_bins); it is read only as 40, got 80"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_model_dir(tmp_path / "m")
