"""The language model for shallow fusion: text normalisation, incremental steps, training into a model directory."""

from __future__ import annotations

import dataclasses

import pytest

import torch
from safetensors.torch import load_file

from asr.lm import LMTraining, lm_sentence, perplexity, token_sequences, train_lm
from asr.model import PRETRAINED_DIR, load_model_dir
from asr.model.lm import LanguageModel, select_state
from asr.tokenizer import SOS_ID


def test_lm_sentence_keeps_words_and_apostrophes_only():
    assert lm_sentence("The Chronicles of Newgate, Volume two. \u201cIt's\u201d done!") == "the chronicles of newgate volume two it's done"


def test_steps_equal_the_full_pass_and_states_follow_their_rows():
    torch.manual_seed(0)
    lm = LanguageModel(vocab_size=20, dim=16, layers=2).eval()
    tokens = torch.tensor([[SOS_ID, 7, 9, 12], [SOS_ID, 5, 5, 6]])  # (N=2, U=4)
    full, _ = lm(tokens)
    state = None
    for u in range(tokens.size(1)):
        step, state = lm.step(tokens[:, u], state)
        torch.testing.assert_close(step, full[:, u].log_softmax(-1), rtol=1e-5, atol=1e-5)
    swapped = select_state(state, torch.tensor([1, 0]))
    nxt, _ = lm.step(torch.tensor([6, 12]), swapped)  # row 0 now continues sentence 1
    ref, _ = lm(torch.cat([tokens, torch.tensor([[12], [6]])], dim=1))
    torch.testing.assert_close(nxt[0], ref[1, -1].log_softmax(-1), rtol=1e-5, atol=1e-5)


def test_train_lm_learns_the_text_and_leaves_the_acoustic_model_alone(tmp_path):
    text, dev = tmp_path / "text", tmp_path / "dev"
    sentences = ["one two three", "four five six", "seven eight nine"]
    text.write_text("".join(f"t{i} {sentences[i % 3]}\n" for i in range(60)))
    dev.write_text("".join(f"d{i} {s}\n" for i, s in enumerate(sentences)))
    figures = train_lm(PRETRAINED_DIR, [text], [dev], tmp_path / "model", LMTraining(layers=1, dim=32, epochs=5, dropout=0.0, batch_sentences=4, lr=1e-2), log=lambda _: None)
    assert figures["train_sentences"] == 60 and figures["dev_sentences"] == 3
    assert figures["dev_perplexity"] < 2.0  # the first word of each sentence is the only choice: ~3 ** (1/4)
    model, tokenizer, cfg = load_model_dir(tmp_path / "model")
    assert cfg.model.lm_layers == 1 and model.lm is not None
    assert perplexity(model.lm, token_sequences([dev], tokenizer)) == figures["dev_perplexity"]
    before, after = load_file(str(PRETRAINED_DIR / "model.safetensors")), load_file(str(tmp_path / "model" / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sorted(set(after) - set(before)) == sorted(f"lm.{k}" for k in model.lm.state_dict())
    assert (tmp_path / "model" / "dev_wer.json").read_text() == (PRETRAINED_DIR / "dev_wer.json").read_text()


def test_sentences_with_unknown_characters_are_left_out(tmp_path):
    _, tokenizer, _ = load_model_dir(PRETRAINED_DIR)  # the digits model's words
    text = tmp_path / "text"
    text.write_text("a one two\nb one banana\nc Three, four.\n")
    assert [tokenizer.decode(ids) for ids in token_sequences([text], tokenizer)] == ["one two", "three four"]


def test_cli_train_lm_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    from asr.cli import main

    text = tmp_path / "text"
    text.write_text("a one two\n")
    assert main(["train-lm", str(PRETRAINED_DIR), "--text", str(tmp_path / "missing"), "--dev", str(text), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "missing: no such file" in err and "Traceback" not in err and not (tmp_path / "m").exists()
    text.write_text("a banana\n")  # nothing the digits model can spell
    assert main(["train-lm", str(PRETRAINED_DIR), "--text", str(text), "--dev", str(text), "--out", str(tmp_path / "m")]) == 2
    assert "no usable sentences in --text" in capsys.readouterr().err


# ---------------------------------------------------------------- shallow fusion in beam search

from test_decoding import make_model, padded_fbank  # noqa: E402

from asr.audio import load_audio  # noqa: E402
from asr.decoding import DecodeOptions, recognize  # noqa: E402
from asr.model.asr_model import prepend_sos  # noqa: E402
from asr.tokenizer import EOS_ID  # noqa: E402


def sequence_log_probs(model, feats, lens, hyps) -> tuple[list[float], list[float], list[float]]:
    """Teacher-forced log P_att(y EOS), log P_lm(y EOS) and CTC log P(y) of each hypothesis' tokens."""
    enc, enc_lens = model.encode(feats, lens)
    att, lm, ctc = [], [], []
    for b, h in enumerate(hyps):
        target = torch.tensor(h.tokens + [EOS_ID])
        inputs = prepend_sos(torch.tensor([h.tokens], dtype=torch.long))  # (1, U + 1)
        logits, _ = model.forward_decoder(enc[b : b + 1, : enc_lens[b]], enc_lens[b : b + 1], inputs)
        att.append(float(logits[0].float().log_softmax(-1).gather(1, target[:, None]).sum()))
        lm_logits, _ = model.lm(inputs)
        lm.append(float(lm_logits[0].log_softmax(-1).gather(1, target[:, None]).sum()))
        ctc_lp = model.ctc_log_probs(enc[b : b + 1, : enc_lens[b]]).transpose(0, 1)  # (T', 1, V)
        nll = torch.nn.functional.ctc_loss(ctc_lp, torch.tensor([h.tokens], dtype=torch.long), enc_lens[b : b + 1], torch.tensor([len(h.tokens)]),
                                           blank=1, reduction="sum", zero_infinity=False)
        ctc.append(-float(nll))
    return att, lm, ctc


@pytest.mark.parametrize("ctc_weight", [0.0, 0.4], ids=["attention", "joint_ctc"])
@torch.inference_mode()
def test_fused_score_is_attention_plus_weighted_lm(fsdd_dir, ctc_weight):
    """A finished hypothesis' score is (1 - w) log P_att + w log P_ctc + l log P_lm of its tokens and EOS."""
    feats, lens = padded_fbank([load_audio(fsdd_dir / "recordings" / n) for n in ("7_theo_36.wav", "3_george_23.wav")])
    model = make_model((feats, lens), 3, eos_bias=3.0)  # ends its sentences: every hypothesis has an EOS
    torch.manual_seed(1)
    model.lm = LanguageModel(model.vocab_size, 16, 1).eval()
    hyps = recognize(model, feats, lens, DecodeOptions(beam_size=3, ctc_weight=ctc_weight, lm_weight=0.7), need_attention=False)
    att, lm, ctc = sequence_log_probs(model, feats, lens, hyps)
    for h, a, l, c in zip(hyps, att, lm, ctc):
        assert h.score == pytest.approx((1 - ctc_weight) * a + ctc_weight * c + 0.7 * l, abs=1e-3)
    without = recognize(model, feats, lens, DecodeOptions(beam_size=3, ctc_weight=ctc_weight), need_attention=False)
    assert [h.score for h in without] != [h.score for h in hyps]
    uncached = recognize(model, feats, lens, DecodeOptions(beam_size=3, ctc_weight=ctc_weight, lm_weight=0.7, kv_cache=False),
                         need_attention=False)
    assert [h.tokens for h in uncached] == [h.tokens for h in hyps]
    assert [h.score for h in uncached] == pytest.approx([h.score for h in hyps], rel=1e-6, abs=1e-5)


def test_a_strong_lm_writes_its_own_sentence_and_weight_0_changes_nothing(tmp_path, fsdd_dir):
    """Shallow fusion steers the search: with a large weight an LM that knows one sentence wins over the audio."""
    from asr.transcribe import Transcriber

    text = tmp_path / "text"
    text.write_text("".join(f"t{i} one two three\n" for i in range(40)))
    train_lm(PRETRAINED_DIR, [text], [text], tmp_path / "model", LMTraining(layers=1, dim=32, epochs=5, dropout=0.0,
                                                                           batch_sentences=4, lr=1e-2), log=lambda _: None)
    # the search alone: the confidence floor would (rightly) empty what the audio does not support
    transcriber = Transcriber.load(tmp_path / "model").with_inference(min_confidence=0.0)
    audio = fsdd_dir / "recordings" / "7_jackson_8.wav"
    plain = transcriber.transcribe(audio, transcriber.options("beam", ctc_weight=0.0, attention_window=()))
    assert plain.text == "seven"
    fused = transcriber.transcribe(audio, transcriber.options("beam", ctc_weight=0.0, attention_window=(), lm_weight=5.0))
    assert fused.text.split() == ["one", "two", "three"][: len(fused.text.split())] and len(fused.text.split()) >= 2
    shipped = Transcriber.load(PRETRAINED_DIR)
    again = shipped.transcribe(audio, shipped.options("beam", ctc_weight=0.0, attention_window=()))
    assert dataclasses.replace(plain, processing_time=0) == dataclasses.replace(again, processing_time=0)
