"""The language model for shallow fusion: text normalisation, incremental steps, training into a model directory."""

from __future__ import annotations

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
