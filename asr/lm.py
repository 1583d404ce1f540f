"""Train a model directory's language model on text: `asr train-lm MODEL --text FILE...`.

The LM (asr/model/lm.py) reads the ASR model's own tokens, so it is trained after the model,
through its tokenizer, and saved inside its directory (model.lm_layers > 0 in config.yaml);
the acoustic model's weights are left exactly as they were. Text is any amount of sentences:
the recipe's transcripts, and other English (the LJ Speech sentences in ../shared/data/text).
The epoch with the lowest perplexity on held-out transcripts (`--dev`) is kept; how much the
LM counts in the search (inference.lm_weight) is then chosen by dev WER, not by perplexity.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from asr.evaluate import load_transcripts
from asr.model import load_model_dir, save_model_dir
from asr.model.lm import LanguageModel
from asr.tokenizer import EOS_ID, PAD_ID, SOS_ID, UNK_ID, Tokenizer, normalize_text


@dataclass(frozen=True)
class LMTraining:
    layers: int = 2
    dim: int = 512
    dropout: float = 0.3
    epochs: int = 15
    batch_sentences: int = 64
    lr: float = 1e-3
    seed: int = 0


def lm_sentence(text: str) -> str:
    """Written English -> the model's transcript style: punctuation other than apostrophes removed, then
    asr.tokenizer.normalize_text ("Newgate, Volume two." -> "newgate volume two")."""
    kept = "".join(" " if unicodedata.category(c).startswith("P") and c != "'" else c for c in text)
    return normalize_text(kept)


def token_sequences(paths: Sequence[str | Path], tokenizer: Tokenizer) -> list[list[int]]:
    """Sentences of Kaldi text files / data dirs / JSONL manifests -> token ids; sentences holding a
    character the tokenizer does not know (it would read <unk>) are left out."""
    out = []
    for path in paths:
        for text in load_transcripts(path).values():
            ids = tokenizer.encode(lm_sentence(text))
            if ids and UNK_ID not in ids:
                out.append(ids)
    return out


def _batches(seqs: list[list[int]], size: int, shuffle: random.Random | None):
    """-> (inputs [SOS y], targets [y EOS]) (B, U+1) padded, sentences of similar length together."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    if shuffle is not None:
        shuffle.shuffle(chunks)
    for chunk in chunks:
        x = pad_sequence([torch.tensor([SOS_ID] + seqs[i]) for i in chunk], batch_first=True, padding_value=PAD_ID)
        y = pad_sequence([torch.tensor(seqs[i] + [EOS_ID]) for i in chunk], batch_first=True, padding_value=PAD_ID)
        yield x, y


def _loss(lm: LanguageModel, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
    logits, _ = lm(x)  # (B, U+1, V)
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, ignore_index=PAD_ID, reduction="sum")
    return loss, int((y != PAD_ID).sum())


def perplexity(lm: LanguageModel, seqs: list[list[int]]) -> float:
    lm.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for x, y in _batches(seqs, 256, None):
            loss, n = _loss(lm, x, y)
            total, count = total + float(loss), count + n
    return math.exp(total / max(count, 1))


def train_lm(model_dir: str | Path, text: Sequence[str | Path], dev: Sequence[str | Path], out_dir: str | Path,
             cfg: LMTraining = LMTraining(), log=print) -> dict:
    """Fit an LSTM LM on `text` through the model's tokenizer; write the model with it to `out_dir`.
    Returns {train_sentences, dev_sentences, dev_perplexity, best_epoch}."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    model, tokenizer, exp_cfg = load_model_dir(model_dir)
    train, held_out = token_sequences(text, tokenizer), token_sequences(dev, tokenizer)
    if not train or not held_out:
        raise ValueError(f"no usable sentences in {'--text' if not train else '--dev'}")
    lm = LanguageModel(tokenizer.vocab_size, cfg.dim, cfg.layers, cfg.dropout)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=cfg.lr)
    best, best_state, best_epoch = math.inf, None, 0
    for epoch in range(1, cfg.epochs + 1):
        lm.train()
        for x, y in _batches(train, cfg.batch_sentences, rng):
            loss, n = _loss(lm, x, y)
            optimizer.zero_grad()
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), 5.0)
            optimizer.step()
        ppl = perplexity(lm, held_out)
        log(f"epoch {epoch}: dev perplexity {ppl:.2f} per token")
        if ppl < best:
            best, best_epoch = ppl, epoch
            best_state = {k: v.clone() for k, v in lm.state_dict().items()}
    exp_cfg = replace(exp_cfg, model=replace(exp_cfg.model, lm_layers=cfg.layers, lm_dim=cfg.dim))
    model.lm = LanguageModel(tokenizer.vocab_size, cfg.dim, cfg.layers)
    model.lm.load_state_dict(best_state)
    save_model_dir(out_dir, model.eval(), tokenizer, exp_cfg, carry_from=model_dir)
    return {"train_sentences": len(train), "dev_sentences": len(held_out), "dev_perplexity": best, "best_epoch": best_epoch}
