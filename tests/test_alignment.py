"""Word timings: anchors from CTC forced alignment and from cross-attention, extended over the speech."""

import numpy as np
import pytest
import torch

from asr.alignment import (
    AlignmentError,
    attention_token_frames,
    attention_word_times,
    ctc_token_frames,
    ctc_word_times,
    extend_to_speech,
)
from asr.audio import load_audio
from asr.config import FeatureConfig, ModelConfig
from asr.decoding import DecodeOptions, recognize
from asr.features import fbank
from asr.model import ASRModel
from asr.tokenizer import BLANK_ID
from asr.transcribe import Transcriber
from fsdd_audio import connected_digits, overlap, spoken_extents, wav_bytes

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


def energy(level_db: float, length: int, *spans: tuple[int, int, float]) -> np.ndarray:
    """Block energies (length,) at level_db, with (start, end, dB) spans of blocks set louder or quieter."""
    e = np.full(length, level_db)
    for start, end, db in spans:
        e[start:end] = db
    return e


def test_words_grow_over_their_speech_and_not_over_the_pauses():
    e = energy(-60, 100, (10, 40, -20), (60, 90, -25))  # two words in 10 ms blocks, pauses around
    times = extend_to_speech([(0.20, 0.24), (0.70, 0.74)], e, 0.01, 1.0)
    assert sum(times, ()) == pytest.approx((0.10, 0.40, 0.60, 0.90))


def test_a_stop_closure_inside_a_word_does_not_end_it():
    # Word one: a vowel, a closure quieter than the pause (as in "eight"), a release; then a pause.
    e = energy(-60, 100, (10, 30, -20), (30, 36, -80), (36, 40, -30), (60, 90, -20))
    times = extend_to_speech([(0.12, 0.16), (0.64, 0.68)], e, 0.01, 1.0)
    assert sum(times, ()) == pytest.approx((0.10, 0.40, 0.60, 0.90))


def test_words_that_run_together_part_at_the_quietest_block():
    e = energy(-60, 100, (10, 60, -20), (33, 34, -30), (40, 41, -28))
    times = extend_to_speech([(0.12, 0.16), (0.48, 0.52)], e, 0.01, 1.0)
    assert sum(times, ()) == pytest.approx((0.10, 0.33, 0.33, 0.60))


def test_speech_like_is_near_the_peak_and_above_the_background():
    # Near-digital silence (-90) around a breath 45 dB under the word: 25 dB above the
    # background, but out of the word's 35 dB range.
    e = energy(-90, 100, (5, 20, -65), (30, 60, -20))
    assert extend_to_speech([(0.40, 0.44)], e, 0.01, 1.0) == [pytest.approx((0.30, 0.60))]
    # Noise 3 dB over its own background is not speech either.
    e = energy(-60, 100, (0, 20, -57), (30, 60, -20))
    assert extend_to_speech([(0.40, 0.44)], e, 0.01, 1.0) == [pytest.approx((0.30, 0.60))]


def test_a_word_without_speech_of_its_own_keeps_its_anchor():
    e = energy(-60, 100, (10, 30, -20), (70, 90, -20))
    times = extend_to_speech([(0.12, 0.16), (0.45, 0.47), (0.80, 0.84)], e, 0.01, 1.0)
    assert sum(times, ()) == pytest.approx((0.10, 0.30, 0.45, 0.47, 0.70, 0.90))


def test_extended_times_stay_ordered_apart_and_inside_the_audio():
    # Attention may put two words on one frame; the last block is partial (0.955 s of audio).
    e = energy(-60, 96, (5, 50, -20), (60, 96, -20))
    times = extend_to_speech([(0.20, 0.24), (0.20, 0.24), (0.80, 0.84)], e, 0.01, 0.955)
    assert times[-1][1] == pytest.approx(0.955)
    flat = sum(times, ())
    assert list(flat) == sorted(flat) and 0 <= flat[0] and times[0][0] < times[0][1]
    assert extend_to_speech([], e, 0.01, 0.955) == []


def test_served_word_times_cover_the_spoken_digits(fsdd_dir):
    """The shipped model through the Transcriber on connected digits of the unseen speaker:
    each word against its recording's speech (within 35 dB of that recording's peak)."""
    transcriber = Transcriber.load()
    built = [connected_digits(fsdd_dir, d, "theo") for d in ("314", "2718", "60521", "4479")]
    results = transcriber.transcribe_batch([wav_bytes(wave) for wave, _ in built], timestamps=True)
    scores = []
    for (wave, spans), result in zip(built, results):
        assert len(result.words) == len(spans), result.text
        scores += [overlap((w.start, w.end), ref) for w, ref in zip(result.words, spoken_extents(wave, spans))]
    coverage, iou = np.array(scores).T  # (words,) each
    assert iou.min() > 0  # every word on its own digit
    assert np.median(iou) >= 0.8 and np.median(coverage) >= 0.8, (coverage, iou)
