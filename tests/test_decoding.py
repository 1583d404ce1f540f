"""Search correctness on randomly initialised real models fed real FSDD speech."""

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from asr.config import FeatureConfig, ModelConfig
from asr.audio import load_audio
from asr.decoding import CTCPrefixScorer, DecodeOptions, ctc_greedy_search, recognize, search, window_mask
from asr.features import compute_cmvn, fbank
from asr.model import ASRModel
from asr.tokenizer import BLANK_ID, EOS_ID, SOS_ID
from asr.transcribe import Transcriber
from fsdd_audio import connected_digits, wav_bytes

RECORDINGS = ["7_theo_36.wav", "7_jackson_8.wav", "0_yweweler_11.wav", "3_george_23.wav"]  # 2.2 s .. 0.3 s

# An attention window narrow enough to bind the flat attention of a random model (T' = 3 .. 55 here).
WINDOW = dict(attention_window=(1, 4), eos_penalty=1.0)

# One of each search the model offers.
EVERY_SEARCH = [
    DecodeOptions("greedy"), DecodeOptions(beam_size=3), DecodeOptions(beam_size=3, ctc_weight=0.5), DecodeOptions("ctc_greedy"),
    DecodeOptions("greedy", **WINDOW), DecodeOptions(beam_size=3, **WINDOW),
]
SEARCH_NAMES = ["greedy", "beam", "joint_ctc_beam", "ctc_greedy", "windowed_greedy", "windowed_beam"]


def padded_fbank(waves, cfg: FeatureConfig = FeatureConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """Waves (each (N,) at 16 kHz) -> log-mels feats (B, T, 80), lens (B,)."""
    feats = [fbank(torch.from_numpy(wave), cfg) for wave in waves]
    lens = torch.tensor([f.size(0) for f in feats])
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lens


@pytest.fixture(scope="module")
def speech(fsdd_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """Real log-mels of utterances of different lengths: feats (B, T, 80), lens (B,)."""
    return padded_fbank([load_audio(fsdd_dir / "recordings" / name) for name in RECORDINGS])


def make_model(speech, seed: int, vocab_size: int = 12, ctc: bool = True, eos_bias: float = 0.0) -> ASRModel:
    """A small randomly initialised model. Such a model rarely ends a sentence, so eos_bias
    (added to the EOS logit) chooses between mostly-cut and mostly-EOS-ended hypotheses."""
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=64, n_heads=2, d_ff=128, encoder_layers=2, decoder_layers=2, conv_channels=16, ctc=ctc)
    model = ASRModel(cfg, vocab_size, n_mels=80)
    feats, lens = speech
    model.set_cmvn(*compute_cmvn(f[:n] for f, n in zip(feats, lens)))
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] += eos_bias
    return model.eval()


@torch.inference_mode()
def teacher_forced(
    model, feats, lens, tokens: list[int], ended: bool, peaks: list[int] | None = None, window: tuple[int, ...] = ()
) -> tuple[float, float | None]:
    """(attention log-prob, CTC log-prob or None) of one utterance's tokens (+ EOS if ended);
    with a window, the attention of the token after peaks[u] restricted to it."""
    enc, enc_lens = model.encode(feats[None], lens[None])
    mask = window_mask(torch.tensor([peaks]), enc_lens, enc.size(1), window) if window else None
    logits, _ = model.forward_decoder(enc, enc_lens, torch.tensor([[SOS_ID] + tokens]), cross_mask=mask)
    targets = torch.tensor(tokens + [EOS_ID] if ended else tokens, dtype=torch.long)
    att = logits[0, : len(targets)].log_softmax(-1).gather(1, targets[:, None]).sum()
    if not (ended and model.has_ctc):
        return float(att), None
    log_probs = model.ctc_log_probs(enc).transpose(0, 1)  # (T', 1, V)
    ctc = -F.ctc_loss(
        log_probs, torch.tensor([tokens]), enc_lens, torch.tensor([len(tokens)]), blank=BLANK_ID, reduction="sum"
    )
    return float(att), float(ctc)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "viterbi"}, "method"),
        ({"beam_size": 0}, "beam_size"),
        ({"beam_size": 2.0}, "beam_size"),
        ({"length_penalty": -1.0}, "length_penalty"),
        ({"max_len_ratio": float("nan")}, "max_len_ratio"),
        ({"min_max_len": 0}, "min_max_len"),
        ({"ctc_weight": 1.0}, "ctc_weight"),
        ({"attention_window": (5, 2)}, "attention_window"),
        ({"attention_window": (4,)}, "attention_window"),
        ({"attention_window": (0, 2.5)}, "attention_window"),
        ({"eos_penalty": 1.0}, "eos_penalty.*needs an attention window"),
        ({"eos_penalty": -1.0, "attention_window": (4, 24)}, "eos_penalty"),
        ({"min_tokens": -1}, "min_tokens"),
        ({"min_tokens": 1.5}, "min_tokens"),
    ],
)
def test_invalid_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodeOptions(**kwargs)


def test_ctc_decoding_needs_a_ctc_head_and_eval_mode(speech):
    feats, lens = speech
    model = make_model(speech, 0, ctc=False)
    for opts in (DecodeOptions("ctc_greedy"), DecodeOptions(ctc_weight=0.3)):
        with pytest.raises(ValueError, match="CTC head"):
            recognize(model, feats, lens, opts)
    with pytest.raises(ValueError, match="eval"):
        recognize(model.train(), feats, lens, DecodeOptions("greedy"))


@pytest.mark.parametrize("window", [{}, WINDOW], ids=["", "windowed"])
@pytest.mark.parametrize("seed, vocab_size, eos_bias", [(0, 12, 0.0), (0, 12, 1.0), (2, 30, 1.0), (3, 12, 1.0)])
def test_beam_of_one_is_greedy(speech, seed, vocab_size, eos_bias, window):
    model = make_model(speech, seed, vocab_size, eos_bias=eos_bias)
    greedy = recognize(model, *speech, DecodeOptions("greedy", **window))
    beam = recognize(model, *speech, DecodeOptions("beam", beam_size=1, **window))
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    assert [h.score for h in beam] == pytest.approx([h.score for h in greedy], abs=1e-4)
    assert [h.peaks for h in beam] == [h.peaks for h in greedy]


@pytest.mark.parametrize("eos_bias", [0.0, 1.0])
@pytest.mark.parametrize(
    "opts",
    [DecodeOptions("greedy"), DecodeOptions(beam_size=4), DecodeOptions(beam_size=4, ctc_weight=0.4),
     DecodeOptions("greedy", **WINDOW), DecodeOptions(beam_size=4, **WINDOW), DecodeOptions(beam_size=4, ctc_weight=0.4, **WINDOW)],
)
def test_scores_are_the_model_log_probs_of_the_tokens(speech, opts, eos_bias):
    """Beam bookkeeping (back-pointers, EOS, CTC state, attention peaks) must reproduce teacher-forced
    scores (less the EOS penalty of an ended hypothesis)."""
    feats, lens = speech
    model = make_model(speech, 2, vocab_size=30, eos_bias=eos_bias)
    max_lens = opts.max_lens(model.encode(feats, lens)[1]).tolist()
    for hyp, f, n, max_len in zip(recognize(model, feats, lens, opts), feats, lens, max_lens):
        ended = len(hyp.tokens) < max_len  # only a hypothesis at the maximum length is cut without EOS
        att, ctc = teacher_forced(model, f, n, hyp.tokens, ended, hyp.peaks, opts.attention_window)
        expected = att if ctc is None else (1 - opts.ctc_weight) * att + opts.ctc_weight * ctc
        assert hyp.score == pytest.approx(expected - opts.eos_penalty * ended, abs=1e-3)
        assert hyp.confidence == pytest.approx(math.exp(att / (len(hyp.tokens) + ended)), rel=1e-3)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_exhaustive_beam_finds_the_best_sequence(speech, length_penalty):
    """Vocabulary {UNK, 5, 6} + EOS, at most 3 tokens: 40 beams hold every prefix, so beam
    search must return the best of all sequences, and never do worse than greedy."""
    feats, lens = speech[0][2:3], speech[1][2:3]
    model = make_model(speech, 4, vocab_size=7)
    opts = DecodeOptions(beam_size=40, length_penalty=length_penalty, max_len_ratio=0.0, min_max_len=3)
    candidates = [list(seq) for n in range(4) for seq in itertools.product([2, 5, 6], repeat=n)]

    def normalised(tokens: list[int], score: float) -> float:
        return score / (len(tokens) + (len(tokens) < 3)) ** length_penalty

    brute = max(candidates, key=lambda t: normalised(t, teacher_forced(model, feats[0], lens[0], t, len(t) < 3)[0]))
    beam = recognize(model, feats, lens, opts)[0]
    greedy = recognize(model, feats, lens, DecodeOptions("greedy", max_len_ratio=0.0, min_max_len=3))[0]
    assert beam.tokens == brute
    assert normalised(beam.tokens, beam.score) >= normalised(greedy.tokens, greedy.score) - 1e-6


def test_max_len_is_respected(speech):
    feats, lens = speech
    model = make_model(speech, 5, eos_bias=-1e4)  # a real model that never wants to stop
    opts = dict(max_len_ratio=0.2, min_max_len=3)
    max_lens = DecodeOptions(**opts).max_lens(model.encode(feats, lens)[1]).tolist()
    assert max_lens[0] > 3 and max_lens[-1] == 3  # both the ratio and the floor apply
    for extra in [dict(method="greedy"), dict(beam_size=3), dict(beam_size=3, ctc_weight=0.3)]:
        hyps = recognize(model, feats, lens, DecodeOptions(**opts, **extra))
        assert [len(h.tokens) for h in hyps] == max_lens


@pytest.mark.parametrize("opts", EVERY_SEARCH, ids=SEARCH_NAMES)
def test_batch_decode_equals_one_by_one(speech, opts):
    """Padding must not change any utterance's result."""
    feats, lens = speech
    model = make_model(speech, 6, eos_bias=1.0)
    batched = recognize(model, feats, lens, opts)
    for i, hyp in enumerate(batched):
        alone = recognize(model, feats[i : i + 1, : lens[i]], lens[i : i + 1], opts)[0]
        assert hyp.tokens == alone.tokens
        assert hyp.score == pytest.approx(alone.score, abs=1e-4)
        if opts.method != "ctc_greedy":
            torch.testing.assert_close(hyp.attention, alone.attention, atol=1e-5, rtol=1e-4)


def test_attention_and_confidence_of_hypotheses(speech):
    feats, lens = speech
    model = make_model(speech, 7, eos_bias=-1e4)  # no empty hypotheses
    enc, enc_lens = model.encode(feats, lens)
    for i, hyp in enumerate(recognize(model, feats, lens, DecodeOptions(beam_size=2))):
        n = int(enc_lens[i])
        assert hyp.attention.shape == (len(hyp.tokens), n) and hyp.tokens
        torch.testing.assert_close(hyp.attention.sum(-1), torch.ones(len(hyp.tokens)))  # rows are distributions
        # row u: the decoder step that emitted token u, i.e. the one fed SOS + tokens[:u]
        inputs = torch.tensor([[SOS_ID] + hyp.tokens[:-1]])
        _, attn = model.forward_decoder(enc[i : i + 1], enc_lens[i : i + 1], inputs, need_attention=True)
        torch.testing.assert_close(hyp.attention, torch.stack(attn).mean(dim=(0, 2))[0, : len(hyp.tokens), :n])
        assert 0.0 <= hyp.confidence <= 1.0
    for hyp in recognize(model, feats, lens, DecodeOptions("ctc_greedy")):
        assert hyp.attention is None and 0.0 <= hyp.confidence <= 1.0


WINDOWED_SEARCHES = [DecodeOptions("greedy", **WINDOW), DecodeOptions(beam_size=3, **WINDOW), DecodeOptions(beam_size=3, ctc_weight=0.5, **WINDOW)]
WINDOWED_NAMES = ["greedy", "beam", "joint_ctc_beam"]


@pytest.mark.parametrize("opts", WINDOWED_SEARCHES, ids=WINDOWED_NAMES)
def test_window_keeps_each_tokens_attention_just_after_the_previous_peak(speech, opts):
    """Token u > 0 attends only frames peaks[u - 1] + first .. + last (clipped to the utterance), so
    the peaks never go back; peaks[u] is where its attention (Hypothesis.attention row u) is highest."""
    feats, lens = speech
    model = make_model(speech, 7, eos_bias=-1e4)  # no EOS: every hypothesis runs to its maximum length
    enc_lens = model.encode(feats, lens)[1].tolist()
    free = recognize(model, feats, lens, dataclasses.replace(opts, attention_window=(), eos_penalty=0.0))
    jumps = [int(p) - int(q) for h in free for q, p in zip(h.attention.argmax(-1), h.attention.argmax(-1)[1:])]
    assert min(jumps) < 0 and max(jumps) > opts.attention_window[1]  # so the window below has work to do
    first, last = opts.attention_window
    for hyp, n in zip(recognize(model, feats, lens, opts), enc_lens):
        assert len(hyp.peaks) == len(hyp.tokens) > 1
        for u in range(1, len(hyp.tokens)):
            lo, hi = min(hyp.peaks[u - 1] + first, n - 1), min(hyp.peaks[u - 1] + last, n - 1)
            assert lo <= hyp.peaks[u] <= hi
            assert hyp.attention[u, :lo].sum() == 0 and hyp.attention[u, hi + 1 :].sum() == 0
        assert all(row[p] >= row.max() - 1e-6 for row, p in zip(hyp.attention, hyp.peaks))


@pytest.mark.parametrize("opts", WINDOWED_SEARCHES, ids=WINDOWED_NAMES)
def test_a_window_wider_than_the_input_changes_nothing(speech, opts):
    """The window is a mask on the cross-attention and nothing else: one that covers every frame
    decodes as the search without a window does."""
    model = make_model(speech, 6, eos_bias=1.0)
    off = recognize(model, *speech, dataclasses.replace(opts, attention_window=(), eos_penalty=0.0))
    wide = recognize(model, *speech, dataclasses.replace(opts, attention_window=(-10**6, 10**6), eos_penalty=0.0))
    for a, b in zip(off, wide):
        assert a.tokens == b.tokens and a.score == pytest.approx(b.score, abs=1e-4)
        torch.testing.assert_close(a.attention, b.attention, atol=1e-5, rtol=1e-4)
        assert a.peaks is None and len(b.peaks) == len(b.tokens)


def test_the_shipped_model_reads_both_of_two_identical_neighbours(fsdd_dir):
    """The unseen speaker's "7 7 3 1": content-based attention cannot tell two identical neighbours
    apart (earlier shipped models skipped one "seven" or read one again without the window); with
    the shipped model's window and EOS penalty the attention decoder reads every word, each token's
    attention at least 4 frames after the last one's."""
    transcriber = Transcriber.load()
    wave = transcriber.load_audio(wav_bytes(connected_digits(fsdd_dir, "7731", "theo")[0]))  # (N,) at 16 kHz
    feats = fbank(torch.from_numpy(wave), transcriber.cfg.features)[None]  # (1, T, 80)
    lens = torch.tensor([feats.size(1)])
    for method in ("greedy", "beam"):
        opts = transcriber.options(method, ctc_weight=0.0)
        assert opts.attention_window == (4, 24) and opts.eos_penalty > 0  # the model's defaults
        hyp = recognize(transcriber.model, feats, lens, opts)[0]
        assert transcriber.tokenizer.decode(hyp.tokens) == "seven seven three one"
        assert all(b - a >= 4 for a, b in zip(hyp.peaks, hyp.peaks[1:]))


@pytest.mark.parametrize(
    "opts", [DecodeOptions("greedy"), DecodeOptions(beam_size=3), DecodeOptions(beam_size=3, ctc_weight=0.5)],
    ids=["greedy", "beam", "joint_ctc_beam"],
)
def test_min_tokens_keeps_the_search_from_ending_at_once(speech, opts):
    """A decoder sure of an immediate end writes nothing; with min_tokens 1 (the no-speech gate has
    already said there is speech) it writes its best token first and then ends."""
    model = make_model(speech, 0, eos_bias=50.0)
    with torch.no_grad():
        model.ctc_head.bias[BLANK_ID] += 50.0  # CTC too hears nothing: blank on every frame
    assert all(h.tokens == [] for h in recognize(model, *speech, opts))
    forced = recognize(model, *speech, dataclasses.replace(opts, min_tokens=1))
    assert all(len(h.tokens) == 1 and h.tokens[0] != EOS_ID and math.isfinite(h.score) for h in forced)
    if opts.method == "greedy":  # the model's best token other than EOS, scored with its log-prob
        for f, n, h in zip(*speech, forced):
            assert h.score == pytest.approx(teacher_forced(model, f[:n], n, h.tokens, ended=True)[0], abs=1e-4)


def test_ctc_greedy_collapses_repeats_and_drops_blanks():
    b, frames = BLANK_ID, [BLANK_ID, 5, 5, BLANK_ID, 5, 6, 6, BLANK_ID, 7, 7, 8]
    logits = torch.full((2, len(frames), 10), -4.0)
    for t, label in enumerate(frames):
        logits[:, t, label] = 0.0
    log_probs = logits.log_softmax(-1)  # (2, 11, 10)
    full, short = ctc_greedy_search(log_probs, torch.tensor([len(frames), 8]))
    assert full.tokens == [5, 5, 6, 7, 8] and short.tokens == [5, 5, 6]
    assert full.score == pytest.approx(float(log_probs[0].max(-1).values.sum()))
    assert full.confidence == pytest.approx(math.exp(float(log_probs[0, 0, b])))  # every frame equally sure
    assert ctc_greedy_search(log_probs[:, :1], torch.tensor([1, 1]))[0].tokens == []


def test_ctc_prefix_score_of_a_full_sequence_is_minus_ctc_loss():
    torch.manual_seed(0)
    log_probs = torch.randn(4, 12, 9).log_softmax(-1)  # (N, T, V)
    lens = torch.tensor([12, 9, 7, 4])
    targets = torch.tensor([[5, 5, 6], [7, 2, 7], [6, 6, 6], [5, 5, 5]])  # last: needs 5 frames, has 4
    scorer = CTCPrefixScorer(log_probs, lens)
    state = scorer.initial_state()
    rows = torch.arange(4)
    for u in range(targets.size(1)):
        cand = torch.stack([(targets[:, u] + 1) % 9, targets[:, u]], 1)  # (N, 2): the target in column 1
        _, cand_state = scorer.score(state, cand)
        state = cand_state.pick(rows, torch.ones(4, dtype=torch.long))
    psi, _ = scorer.score(state, torch.full((4, 1), EOS_ID))
    expected = -F.ctc_loss(
        log_probs.transpose(0, 1), targets, lens, torch.full((4,), 3), blank=BLANK_ID, reduction="none"
    )
    torch.testing.assert_close(psi[:, 0], expected.float())
    assert psi[3, 0] == -math.inf
    empty, _ = scorer.score(scorer.initial_state(), torch.full((4, 1), EOS_ID))
    torch.testing.assert_close(empty[:, 0], torch.stack([log_probs[i, :n, BLANK_ID].sum() for i, n in enumerate(lens)]))


def test_ctc_prefix_scores_of_all_extensions_add_up():
    """P(labelling starts with g) = sum_c P(starts with g + c) + P(labelling is g)."""
    torch.manual_seed(1)
    logits = torch.randn(3, 10, 8)
    logits[..., [SOS_ID, EOS_ID]] = -math.inf  # SOS and EOS are no CTC labels here
    scorer = CTCPrefixScorer(logits.log_softmax(-1), torch.tensor([10, 8, 5]))
    labels = torch.tensor([0, 2, 5, 6, 7])
    cand = torch.cat([labels, torch.tensor([EOS_ID])]).expand(3, -1)  # (N, 6)
    state, prefix = scorer.initial_state(), torch.zeros(3)
    for _ in range(3):  # g = (), (5,), (5, 5)
        psi, cand_state = scorer.score(state, cand)
        torch.testing.assert_close(torch.logsumexp(psi, 1), prefix)
        state, prefix = cand_state.pick(torch.arange(3), torch.full((3,), 2)), psi[:, 2]


def test_search_on_encoder_output_equals_decode_and_attention_is_optional(speech):
    feats, lens = speech
    model = make_model(speech, 7, eos_bias=-1e4)
    enc, enc_lens = model.encode(feats, lens)
    full = recognize(model, feats, lens, DecodeOptions(beam_size=2))
    bare = search(model, enc, enc_lens, DecodeOptions(beam_size=2), need_attention=False)
    assert [h.tokens for h in bare] == [h.tokens for h in full]
    assert [h.score for h in bare] == pytest.approx([h.score for h in full])
    assert all(h.attention is None for h in bare) and all(h.attention is not None for h in full)


def poison(model, monkeypatch, bad: int, bad_len: int, where: str) -> None:
    """Make the model's output for utterance `bad` of a batch non-finite, as absurd input can.

    "encoder": its encoder output is NaN, which the real decoder and CTC head carry to their
    outputs; "heads": its decoder logits are +inf (NaN after log_softmax) and its CTC
    log-probs NaN. The decoder sees B or B * beam rows: the bad ones have encoder length bad_len.
    """
    encode, forward_decoder, ctc_log_probs = model.encode, model.forward_decoder, model.ctc_log_probs
    if where == "encoder":
        def poisoned_encode(feats, feat_lens):
            enc, enc_lens = encode(feats, feat_lens)
            enc[bad] = math.nan
            return enc, enc_lens

        monkeypatch.setattr(model, "encode", poisoned_encode)
        return

    def poisoned_forward_decoder(enc, enc_lens, ys, need_attention=False, cross_mask=None, cache=None):
        logits, attn = forward_decoder(enc, enc_lens, ys, need_attention, cross_mask, cache)
        logits[enc_lens == bad_len] = math.inf
        return logits, attn

    def poisoned_ctc_log_probs(enc):
        log_probs = ctc_log_probs(enc)
        log_probs[bad] = math.nan
        return log_probs

    monkeypatch.setattr(model, "forward_decoder", poisoned_forward_decoder)
    monkeypatch.setattr(model, "ctc_log_probs", poisoned_ctc_log_probs)


@pytest.mark.parametrize("where", ["encoder", "heads"])
@pytest.mark.parametrize("opts", EVERY_SEARCH, ids=SEARCH_NAMES)
def test_non_finite_model_output_gives_the_empty_hypothesis(speech, monkeypatch, opts, where):
    """NaN/inf output for one utterance: it gets no tokens, score -inf and confidence 0.0;
    the other utterances of the batch decode exactly as without it."""
    feats, lens = speech
    model = make_model(speech, 6, eos_bias=1.0)
    enc_lens = model.encode(feats, lens)[1]
    assert len(set(enc_lens.tolist())) == len(enc_lens)  # rows are told apart by length
    clean = recognize(model, feats, lens, opts)
    bad = 1
    assert clean[bad].tokens and math.isfinite(clean[bad].score)  # so "empty" below is the fix at work
    poison(model, monkeypatch, bad, int(enc_lens[bad]), where)
    poisoned = recognize(model, feats, lens, opts)
    assert len(poisoned) == len(clean)
    assert poisoned[bad].tokens == [] and poisoned[bad].score == -math.inf and poisoned[bad].confidence == 0.0
    for i, (hyp, ref) in enumerate(zip(poisoned, clean)):
        assert isinstance(hyp.confidence, float) and 0.0 <= hyp.confidence <= 1.0
        if i != bad:
            assert hyp.tokens == ref.tokens
            assert hyp.score == pytest.approx(ref.score, abs=1e-4)
            assert hyp.confidence == pytest.approx(ref.confidence, abs=1e-4)


def test_ctc_greedy_treats_non_finite_log_probs_as_impossible():
    """A NaN label is never chosen; a frame with nothing finite leaves no path."""
    log_probs = torch.full((3, 4, 10), -5.0)
    log_probs[:, :, BLANK_ID] = -0.1
    log_probs[:, 1, 5] = -0.05  # frame 1: label 5 is best
    log_probs[0, 1, 7] = math.nan  # NaN must not beat label 5
    log_probs[1, 2] = math.inf  # a frame whose every log-prob is +inf
    hyps = ctc_greedy_search(log_probs, torch.tensor([4, 4, 4]))
    assert hyps[0].tokens == [5] == hyps[2].tokens
    assert hyps[0].score == pytest.approx(hyps[2].score) and math.isfinite(hyps[0].score)
    assert (hyps[1].tokens, hyps[1].score, hyps[1].confidence) == ([], -math.inf, 0.0)
