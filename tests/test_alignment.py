"""Word timings from CTC forced alignment and from cross-attention."""

import pytest
import torch

from asr.alignment import (
    AlignmentError,
    attention_token_frames,
    attention_word_times,
    ctc_token_frames,
    ctc_word_times,
)
from asr.audio import load_audio
from asr.config import FeatureConfig, ModelConfig
from asr.decoding import DecodeOptions, recognize
from asr.features import fbank
from asr.model import ASRModel
from asr.tokenizer import BLANK_ID

B = BLANK_ID


def peaked_log_probs(frame_labels: list[int], vocab_size: int = 10) -> torch.Tensor:
    """CTC log-probs (T', V) whose best frame-by-frame labels are frame_labels."""
    logits = torch.full((len(frame_labels), vocab_size), -6.0)
    logits[torch.arange(len(frame_labels)), frame_labels] = 0.0
    return logits.log_softmax(-1)


def one_hot_attention(frames: list[int], num_frames: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(frames), num_frames).float()  # (U, T')


def test_ctc_word_times_follow_the_forced_alignment():
    # frames:          0  1  2  3  4  5  6  7  8  9
    log_probs = peaked_log_probs([B, 5, 5, B, 6, B, B, 7, 7, B])
    words = [("ab", [0, 1]), ("c", [2])]
    times = ctc_word_times(log_probs, [5, 6, 7], words, frame_sec=0.04)
    assert sum(times, ()) == pytest.approx((0.04, 0.20, 0.28, 0.36))
    starts, ends = ctc_token_frames(log_probs, [5, 6, 7])
    assert starts.tolist() == [1, 4, 7] and ends.tolist() == [3, 5, 9]


def test_ctc_alignment_separates_repeated_tokens_and_clips_to_duration():
    log_probs = peaked_log_probs([5, 5, B, 5, B, B])
    times = ctc_word_times(log_probs, [5, 5], [("x", [0]), ("y", [1])], frame_sec=0.1, duration=0.35)
    assert sum(times, ()) == pytest.approx((0.0, 0.2, 0.3, 0.35))  # the second ends at 0.4, clipped
    assert ctc_word_times(log_probs, [], [], frame_sec=0.1) == []


def test_ctc_alignment_errors():
    log_probs = peaked_log_probs([5, B, 5])
    with pytest.raises(AlignmentError, match="cannot align"):
        ctc_word_times(log_probs, [5, 5, 5], [("x", [0, 1, 2])], frame_sec=0.04)  # needs 5 frames
    with pytest.raises(AlignmentError, match="blank"):
        ctc_word_times(log_probs, [5, B], [("x", [0, 1])], frame_sec=0.04)
    with pytest.raises(AlignmentError, match="positions"):
        ctc_word_times(log_probs, [5, 5], [("x", [0]), ("y", [2])], frame_sec=0.04)
    with pytest.raises(AlignmentError, match="positions"):
        ctc_word_times(log_probs, [5, 5], [("x", [1]), ("y", [0])], frame_sec=0.04)


def test_attention_positions_are_made_monotonic():
    attn = one_hot_attention([2, 1, 5, 7], 10)  # token 1 looks back: held at frame 2
    assert attention_token_frames(attn).tolist() == [2, 2, 5, 7]
    times = attention_word_times(attn, [("ab", [0, 1]), ("c", [2]), ("d", [3])], frame_sec=0.04)
    assert sum(times, ()) == pytest.approx((0.08, 0.12, 0.20, 0.24, 0.28, 0.32))


def test_attention_word_times_are_clipped_to_duration():
    attn = one_hot_attention([3, 7], 8)
    times = attention_word_times(attn, [("a", [0]), ("b", [1])], frame_sec=0.1, duration=0.75)
    assert sum(times, ()) == pytest.approx((0.3, 0.4, 0.7, 0.75))  # the second ends at 0.8, clipped


def test_word_times_of_a_real_model_on_real_speech(fsdd_dir):
    """Both sources on one real utterance: ordered, inside the audio; CTC forced alignment of
    the CTC greedy output is the greedy path itself (the best path emits those tokens)."""
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=64, n_heads=2, d_ff=128, encoder_layers=2, decoder_layers=2, conv_channels=16)
    model = ASRModel(cfg, vocab_size=12, n_mels=80).eval()
    wave = load_audio(fsdd_dir / "recordings" / "7_theo_36.wav")
    duration = len(wave) / 16000
    feats = fbank(torch.from_numpy(wave), FeatureConfig())[None]  # (1, T, 80)
    lens = torch.tensor([feats.size(1)])
    with torch.inference_mode():
        log_probs = model.ctc_log_probs(model.encode(feats, lens)[0])[0]  # (T', V)
    hyp = recognize(model, feats, lens, DecodeOptions("ctc_greedy"))[0]
    best = log_probs.argmax(-1)
    runs = [t for t in range(len(best)) if best[t] != B and (t == 0 or best[t] != best[t - 1])]
    assert hyp.tokens and ctc_token_frames(log_probs, hyp.tokens)[0].tolist() == runs

    beam = recognize(model, feats, lens, DecodeOptions(beam_size=2))[0]
    for source in (
        ctc_word_times(log_probs, hyp.tokens, [(str(i), [i]) for i in range(len(hyp.tokens))], 0.04, duration),
        attention_word_times(beam.attention, [(str(i), [i]) for i in range(len(beam.tokens))], 0.04, duration),
    ):
        assert source
        starts, ends = zip(*source)
        assert list(starts) == sorted(starts) and list(ends) == sorted(ends)
        assert all(0.0 <= s < e <= duration for s, e in source)
