"""Text <-> token ids for three kinds of units: characters, words, SentencePiece BPE.

The first five ids are the same for every kind (the model, the losses and the
decoders rely on them); ordinary tokens start at 5:

    0 <pad>   1 <blank> (CTC)   2 <unk>   3 <sos>   4 <eos>

Word boundaries are written with the SentencePiece marker "▁": it is the space
token of the char kind and the word-start prefix of BPE pieces.

A tokenizer is saved as files in a model directory: `tokenizer.json` (kind and,
for char/word, the token list) plus `tokenizer.model` for BPE.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

import sentencepiece as spm

PAD_ID, BLANK_ID, UNK_ID, SOS_ID, EOS_ID = 0, 1, 2, 3, 4
SPECIAL_TOKENS = ("<pad>", "<blank>", "<unk>", "<sos>", "<eos>")
KINDS = ("char", "word", "bpe")
WORD_MARK = "▁"
JSON_FILE = "tokenizer.json"
BPE_FILE = "tokenizer.model"


def normalize_text(text: str) -> str:
    """The one text normalisation for training and scoring: lowercase, single spaces, stripped."""
    return " ".join(text.lower().split())


def _train_bpe(texts: list[str], vocab_size: int) -> bytes:
    """Train a SentencePiece BPE model whose special ids match ours; returns the model bytes."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small corpus may not support vocab_size pieces
        character_coverage=1.0,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=SOS_ID,
        eos_id=EOS_ID,
        pad_piece=SPECIAL_TOKENS[PAD_ID],
        unk_piece=SPECIAL_TOKENS[UNK_ID],
        bos_piece=SPECIAL_TOKENS[SOS_ID],
        eos_piece=SPECIAL_TOKENS[EOS_ID],
        user_defined_symbols=[SPECIAL_TOKENS[BLANK_ID]],  # takes the free id 1
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


class Tokenizer:
    """Encode normalised text to ids (no sos/eos) and decode ids back to text."""

    def __init__(self, kind: str, tokens: Optional[list[str]] = None, bpe_model: Optional[bytes] = None):
        if kind not in KINDS:
            raise ValueError(f"unknown tokenizer kind {kind!r}; use one of {KINDS}")
        self.kind = kind
        self._bpe_model = bpe_model
        if kind == "bpe":
            self._sp = spm.SentencePieceProcessor(model_proto=bpe_model)
            tokens = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"tokenizer must start with {SPECIAL_TOKENS}, got {tokens[:5]}")
        self.tokens: list[str] = list(tokens)
        self._index = {t: i for i, t in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @classmethod
    def train(
        cls, kind: str, texts: Iterable[str], out_dir: Optional[str | Path] = None, vocab_size: int = 0
    ) -> "Tokenizer":
        """Build a tokenizer from training texts; `vocab_size` (incl. specials) is for BPE only."""
        texts = [normalize_text(t) for t in texts]
        if kind == "bpe":
            if vocab_size <= len(SPECIAL_TOKENS):
                raise ValueError(f"bpe needs vocab_size > {len(SPECIAL_TOKENS)}, got {vocab_size}")
            tok = cls(kind, bpe_model=_train_bpe(texts, vocab_size))
        elif kind == "char":
            chars = sorted({c for t in texts for c in t.replace(" ", WORD_MARK)})
            tok = cls(kind, list(SPECIAL_TOKENS) + chars)
        else:
            words = sorted({w for t in texts for w in t.split()})
            tok = cls(kind, list(SPECIAL_TOKENS) + words)
        if out_dir is not None:
            tok.save(out_dir)
        return tok

    @classmethod
    def load_or_train(cls, kind: str, texts: Iterable[str], out_dir: str | Path, vocab_size: int = 0) -> "Tokenizer":
        """The tokenizer saved in `out_dir` (a resumed run's), else one trained on `texts` and saved there."""
        if (Path(out_dir) / JSON_FILE).exists():
            return cls.load(out_dir)
        return cls.train(kind, texts, out_dir, vocab_size)

    def _units(self, text: str) -> list[str]:
        """Normalised text -> the strings looked up in the vocabulary (char/word kinds)."""
        if self.kind == "char":
            return list(text.replace(" ", WORD_MARK))
        return text.split()

    def encode(self, text: str) -> list[int]:
        text = normalize_text(text)
        if self.kind == "bpe":
            return self._sp.encode(text)
        return [self._index.get(u, UNK_ID) for u in self._units(text)]

    def id_to_token(self, i: int) -> str:
        return self.tokens[i]

    def decode(self, ids: Iterable[int]) -> str:
        """ids -> text; special tokens (pad, blank, unk, sos, eos) are dropped."""
        ids = [int(i) for i in ids if int(i) >= len(SPECIAL_TOKENS)]
        if self.kind == "bpe":
            return self._sp.decode(ids)
        if self.kind == "word":
            return " ".join(self.tokens[i] for i in ids)
        return normalize_text("".join(self.tokens[i] for i in ids).replace(WORD_MARK, " "))

    def tokens_to_words(self, ids: list[int]) -> list[tuple[str, list[int]]]:
        """Group token positions into words: [(word, [positions in ids])].

        word: one token per word; char: words are split on the "▁" token; bpe: a
        piece starting with "▁" starts a new word. Special tokens are skipped.
        """
        groups: list[list[int]] = []
        new_word = True
        for pos, i in enumerate(ids):
            i = int(i)
            if i < len(SPECIAL_TOKENS):
                continue
            token = self.tokens[i]
            if self.kind == "char" and token == WORD_MARK:
                new_word = True
                continue
            if new_word or self.kind == "word" or (self.kind == "bpe" and token.startswith(WORD_MARK)):
                groups.append([])
            groups[-1].append(pos)
            new_word = False
        return [(self.decode(ids[p] for p in g), g) for g in groups]

    def save(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        meta: dict = {"kind": self.kind, "vocab_size": self.vocab_size}
        if self.kind == "bpe":
            (out_dir / BPE_FILE).write_bytes(self._bpe_model)
        else:
            meta["tokens"] = self.tokens
        (out_dir / JSON_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, model_dir: str | Path) -> "Tokenizer":
        model_dir = Path(model_dir)
        meta = json.loads((model_dir / JSON_FILE).read_text())
        if meta["kind"] == "bpe":
            return cls("bpe", bpe_model=(model_dir / BPE_FILE).read_bytes())
        return cls(meta["kind"], meta["tokens"])
