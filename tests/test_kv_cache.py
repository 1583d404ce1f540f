"""The decoder's key/value cache (asr/model/decoder.py): a cached step equals the last position
of the full pass, and every search gives the same hypotheses with it as without it
(DecodeOptions.kv_cache), on a randomly initialised model and on the shipped model with real
connected digits."""

import dataclasses

import pytest
import torch

from asr.audio import load_audio
from asr.decoding import DecodeOptions, Hypothesis, recognize, window_mask
from asr.model.asr_model import prepend_sos
from asr.transcribe import Transcriber
from fsdd_audio import connected_digits, wav_bytes
from test_decoding import RECORDINGS, WINDOW, make_model, padded_fbank

SEARCHES = [
    DecodeOptions("greedy"), DecodeOptions(beam_size=4), DecodeOptions(beam_size=4, ctc_weight=0.4),
    DecodeOptions("greedy", **WINDOW), DecodeOptions(beam_size=4, **WINDOW), DecodeOptions(beam_size=4, ctc_weight=0.4, **WINDOW),
]
SEARCH_NAMES = ["greedy", "beam", "joint_ctc_beam", "windowed_greedy", "windowed_beam", "windowed_joint_ctc_beam"]


@pytest.fixture(scope="module")
def speech(fsdd_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """test_decoding's real log-mels of utterances of different lengths: feats (B, T, 80), lens (B,)."""
    return padded_fbank([load_audio(fsdd_dir / "recordings" / name) for name in RECORDINGS])


def assert_same_hypotheses(cached: list[Hypothesis], uncached: list[Hypothesis]) -> None:
    assert [h.tokens for h in cached] == [h.tokens for h in uncached]
    assert [h.peaks for h in cached] == [h.peaks for h in uncached]
    # float32 sums of up to ~60 log-probs: 1e-5 absolute, or a few ulps of a large score
    assert [h.score for h in cached] == pytest.approx([h.score for h in uncached], rel=1e-6, abs=1e-5)
    assert [h.confidence for h in cached] == pytest.approx([h.confidence for h in uncached], abs=1e-6)
    for a, b in zip(cached, uncached):
        if a.attention is not None or b.attention is not None:
            torch.testing.assert_close(a.attention, b.attention, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("window", [(), WINDOW["attention_window"]], ids=["fused", "windowed"])
@torch.inference_mode()
def test_a_cached_step_equals_the_last_position_of_the_full_pass(speech, window):
    """Fed one token at a time, the decoder with a cache gives at every position the logits (and,
    with a window, the cross-attention) of one full pass over the whole sequence; in a padded batch."""
    model = make_model(speech, 1, vocab_size=30)
    enc, enc_lens = model.encode(*speech)  # (B, T', D), (B,)
    batch, frames = enc.size(0), enc.size(1)
    generator = torch.Generator().manual_seed(0)
    tokens = prepend_sos(torch.randint(5, 30, (batch, 6), generator=generator))  # (B, 7)
    peaks = (torch.rand(batch, 6, generator=generator) * enc_lens[:, None]).long()  # (B, 6) within each utterance
    mask = window_mask(peaks, enc_lens, frames, window) if window else None  # (B, 7, T')
    need_attention = bool(window)
    full, full_attn = model.forward_decoder(enc, enc_lens, tokens, need_attention, mask)  # (B, 7, V)
    cache = model.decoder_cache(enc)
    for u in range(tokens.size(1)):
        row = mask[:, u : u + 1] if window else None  # (B, 1, T')
        step, attn = model.forward_decoder(enc, enc_lens, tokens[:, u : u + 1], need_attention, row, cache)  # (B, 1, V)
        assert cache.length == u + 1
        torch.testing.assert_close(step[:, 0], full[:, u], atol=1e-5, rtol=1e-5)
        if window:
            for a, f in zip(attn, full_attn):  # each layer: (B, H, 1, T') against (B, H, 7, T')
                torch.testing.assert_close(a[:, :, 0], f[:, :, u], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(full[:, -1], full[:, -2], atol=1e-3)  # the positions differ: the check above has teeth


@torch.inference_mode()
def test_a_reordered_cache_continues_the_prefixes_it_was_given(speech):
    """Two rows per input (a beam of 2); after reorder(rows) (a beam search dropping and copying
    prefixes among an input's rows) the next step equals a full pass over the chosen prefixes.
    Rows may not take another input's prefix: the encoder's keys and values stay where they are."""
    model = make_model(speech, 1, vocab_size=30)
    enc, enc_lens = model.encode(*speech)  # (B, T', D)
    inputs = torch.arange(enc.size(0)).repeat_interleave(2)  # (2B,): the input of each row
    tokens = prepend_sos(torch.randint(5, 30, (len(inputs), 4), generator=torch.Generator().manual_seed(1)))  # (2B, 5)
    cache = model.decoder_cache(enc, rows_per_input=2)
    for u in range(4):
        model.forward_decoder(enc[inputs], enc_lens[inputs], tokens[:, u : u + 1], cache=cache)
    rows = torch.tensor([1, 1, 2, 3, 5, 4, 6, 6])  # kept, dropped, copied and swapped within each input's rows
    assert torch.equal(inputs[rows], inputs)
    cache.reorder(rows)
    step, _ = model.forward_decoder(enc[inputs], enc_lens[inputs], tokens[rows, 4:], cache=cache)  # (2B, 1, V)
    full, _ = model.forward_decoder(enc[inputs], enc_lens[inputs], tokens[rows])  # (2B, 5, V)
    torch.testing.assert_close(step[:, 0], full[:, -1], atol=1e-5, rtol=1e-5)
    stale = torch.cat([tokens[:, :4], tokens[rows, 4:]], 1)  # what the rows would continue without the reorder
    assert not torch.allclose(step[:, 0], model.forward_decoder(enc[inputs], enc_lens[inputs], stale)[0][:, -1], atol=1e-3)
    with pytest.raises(ValueError, match="own input"):
        cache.reorder(torch.tensor([2, 1, 2, 3, 4, 5, 6, 7]))  # row 0 taking input 1's prefix
    with pytest.raises(ValueError, match="one token per row"):
        model.forward_decoder(enc[inputs], enc_lens[inputs], tokens[:, :2], cache=cache)


@pytest.mark.parametrize("eos_bias", [0.0, 1.0])
@pytest.mark.parametrize("opts", SEARCHES, ids=SEARCH_NAMES)
def test_searches_with_and_without_the_cache_agree_on_a_random_model(speech, opts, eos_bias):
    """Tokens, attention peaks, attention, scores and confidences; eos_bias 0: most hypotheses run to
    their maximum length, 1: most end with EOS."""
    model = make_model(speech, 2, vocab_size=30, eos_bias=eos_bias)
    cached = recognize(model, *speech, opts)
    uncached = recognize(model, *speech, dataclasses.replace(opts, kv_cache=False))
    assert sum(len(h.tokens) for h in cached) >= len(cached)  # real hypotheses, not empty ones
    assert_same_hypotheses(cached, uncached)


# The unseen speaker and two training speakers (held-out takes); "7731" has identical neighbours,
# which the shipped model reads only with its attention window.
SHIPPED_INPUTS = [("7731", "theo"), ("60521", "theo"), ("314", "george"), ("9", "jackson")]


@pytest.fixture(scope="module")
def shipped(fsdd_dir):
    """The shipped model and real connected digits: (transcriber, feats (B, T, 80), lens (B,), 16 kHz waves)."""
    transcriber = Transcriber.load()
    waves = [transcriber.load_audio(wav_bytes(connected_digits(fsdd_dir, d, s)[0])) for d, s in SHIPPED_INPUTS]
    return transcriber, *padded_fbank(waves, transcriber.cfg.features), waves


@pytest.mark.parametrize(
    "method, changes",
    [("greedy", {}), ("beam", dict(ctc_weight=0.0)), ("beam", {}), ("beam", dict(attention_window=(4, 24)))],
    ids=["windowed_greedy", "windowed_beam", "joint_ctc_beam", "windowed_joint_ctc_beam"],
)
def test_the_shipped_model_decodes_the_same_with_and_without_the_cache(shipped, method, changes):
    """The shipped model's own options: greedy and beam 5 with its attention window and EOS penalty,
    beam 5 jointly with CTC (its default), and the joint search with the window too."""
    transcriber, feats, lens, _ = shipped
    opts = transcriber.options(method, **changes)
    assert bool(opts.attention_window) == (opts.ctc_weight == 0 or "attention_window" in changes)
    cached = recognize(transcriber.model, feats, lens, opts)
    uncached = recognize(transcriber.model, feats, lens, dataclasses.replace(opts, kv_cache=False))
    assert [transcriber.tokenizer.decode(h.tokens) for h in cached][0] == "seven seven three one"
    assert_same_hypotheses(cached, uncached)


def test_the_transcriber_gives_the_same_result_with_and_without_the_cache(shipped):
    """Through the Transcriber: the default joint search, once per test-time VTLN warp."""
    shipped_one, _, _, waves = shipped
    transcriber = shipped_one.with_inference(vtln_warps=(0.9, 1.0, 1.1))
    opts = transcriber.default_options
    cached = transcriber.transcribe_batch(waves, opts, timestamps=True)
    uncached = transcriber.transcribe_batch(waves, dataclasses.replace(opts, kv_cache=False), timestamps=True)
    for a, b in zip(cached, uncached):
        assert a.text == b.text and a.words == b.words
        assert a.confidence == pytest.approx(b.confidence, abs=1e-6)
