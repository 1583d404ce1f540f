import json

import pytest

from asr.model import PRETRAINED_DIR
from asr.tokenizer import (
    BLANK_ID,
    EOS_ID,
    PAD_ID,
    SOS_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    normalize_text,
)

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# Transcripts like the FSDD recipe builds them: digit names, several per utterance.
TEXTS = [" ".join(DIGITS[(i * k) % 10] for k in range(1, 1 + i % 4 + 1)) for i in range(60)]


@pytest.fixture(scope="module", params=["char", "word", "bpe"])
def tok(request):
    return Tokenizer.train(request.param, TEXTS, vocab_size=30)


def test_special_ids_are_distinct_and_mean_the_same_after_save_and_load(tok, tmp_path):
    ids = {"<pad>": PAD_ID, "<blank>": BLANK_ID, "<unk>": UNK_ID, "<sos>": SOS_ID, "<eos>": EOS_ID}
    assert len(set(ids.values())) == len(ids) == len(SPECIAL_TOKENS)
    tok.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert {loaded.id_to_token(i): i for i in ids.values()} == ids
    assert loaded.decode([SOS_ID, *loaded.encode("five"), EOS_ID, PAD_ID]) == "five"


def test_shipped_model_was_trained_with_these_special_ids():
    """Renumbering the constants would silently break every trained model: its embedding rows
    and CTC blank are where these ids were when it was trained."""
    shipped = Tokenizer.load(PRETRAINED_DIR)
    assert [shipped.id_to_token(i) for i in (PAD_ID, BLANK_ID, UNK_ID, SOS_ID, EOS_ID)] == [
        "<pad>", "<blank>", "<unk>", "<sos>", "<eos>",
    ]


def test_specials_line_up_in_every_kind(tok):
    assert [tok.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)
    assert tok.id_to_token(BLANK_ID) == "<blank>"
    ids = [i for t in TEXTS for i in tok.encode(t)]
    assert min(ids) >= 5 and max(ids) < tok.vocab_size


def test_round_trip(tok):
    for text in TEXTS + ["  Three   NINE one  "]:
        ids = tok.encode(text)
        assert ids and UNK_ID not in ids
        assert tok.decode(ids) == normalize_text(text)


def test_normalize_text():
    assert normalize_text("  Hello\tWORLD \n again ") == "hello world again"
    assert normalize_text("") == ""


def test_unknown_word_becomes_unk():
    word = Tokenizer.train("word", TEXTS)
    assert word.encode("one eleven two") == [word.encode("one")[0], UNK_ID, word.encode("two")[0]]
    char = Tokenizer.train("char", TEXTS)
    assert char.encode("q")[0] == UNK_ID  # "q" is in no digit name
    bpe = Tokenizer.train("bpe", TEXTS, vocab_size=30)
    assert UNK_ID in bpe.encode("quiz")


def test_decode_drops_specials(tok):
    ids = tok.encode("four two")
    assert tok.decode([SOS_ID, *ids, BLANK_ID, EOS_ID, PAD_ID]) == "four two"


def test_tokens_to_words_groups_positions(tok):
    ids = tok.encode("seven three zero")
    padded = [SOS_ID] + ids + [EOS_ID]
    words = tok.tokens_to_words(padded)
    assert [w for w, _ in words] == ["seven", "three", "zero"]
    positions = [p for _, ps in words for p in ps]
    assert positions == sorted(positions) and 0 not in positions and len(padded) - 1 not in positions
    for word, ps in words:
        assert tok.decode([padded[p] for p in ps]) == word


def test_char_kind_splits_words_on_space_token():
    tok = Tokenizer.train("char", TEXTS)
    assert tok.tokens_to_words(tok.encode("six two")) == [("six", [0, 1, 2]), ("two", [4, 5, 6])]


def test_save_load_identical(tok, tmp_path):
    tok.save(tmp_path)
    meta = json.loads((tmp_path / "tokenizer.json").read_text())
    assert meta["kind"] == tok.kind
    assert (tmp_path / "tokenizer.model").exists() == (tok.kind == "bpe")
    loaded = Tokenizer.load(tmp_path)
    assert loaded.kind == tok.kind and loaded.tokens == tok.tokens
    for text in TEXTS[:10]:
        assert loaded.encode(text) == tok.encode(text)


def test_train_can_save_directly(tmp_path):
    tok = Tokenizer.train("word", TEXTS, out_dir=tmp_path / "model")
    assert Tokenizer.load(tmp_path / "model").tokens == tok.tokens


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        Tokenizer.train("phoneme", TEXTS)
    with pytest.raises(ValueError, match="vocab_size"):
        Tokenizer.train("bpe", TEXTS)
