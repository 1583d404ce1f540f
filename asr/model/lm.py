"""A token-level language model over the ASR model's own units, for shallow fusion in beam search.

The attention decoder learns English only from the transcripts it is trained on (3,100 sentences
in the English recipe). This LSTM reads any amount of text through the same tokenizer, and the
beam search adds `lm_weight * log P_lm(token | tokens so far)` to each candidate's score (asr/decoding.py).
An LSTM is used rather than a Transformer because its state is one fixed-size vector per layer:
a search step costs the same at token 40 as at token 1, and beams reorder it with one index_select.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from asr.tokenizer import PAD_ID

LMState = tuple[Tensor, Tensor]  # LSTM (h, c), each (layers, N, D): one row per hypothesis


class LanguageModel(nn.Module):
    def __init__(self, vocab_size: int, dim: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, tokens: Tensor, state: Optional[LMState] = None) -> tuple[Tensor, LMState]:
        # tokens (N, U) starting with SOS -> logits (N, U, V) of each next token, state after the last
        h, state = self.lstm(self.dropout(self.embed(tokens)), state)
        return self.out(self.dropout(h)), state

    def step(self, tokens: Tensor, state: Optional[LMState]) -> tuple[Tensor, LMState]:
        """One search step: the last token of each row (N,) -> log P(next token) (N, V), new state."""
        logits, state = self(tokens[:, None], state)
        return logits[:, 0].float().log_softmax(dim=-1), state


def select_state(state: LMState, rows: Tensor) -> LMState:
    """The states of hypotheses `rows` (M,) of the previous step, in that order (beam pruning)."""
    return state[0].index_select(1, rows), state[1].index_select(1, rows)
