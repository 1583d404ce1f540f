"""Is there speech at all? A small head on the encoder output that says so.

The decoder always writes something: trained only on speech, it turns noise, hum or
silence into digits. This head gives each input a probability of holding no speech
(like Whisper's `no_speech_prob`), and the Transcriber gives no words where it is high.

Each encoder frame (40 ms) gets a speech logit; the input's logit is the mean of its
`window` highest frame logits (about 0.3 s, one short word). So one word is enough to
count as speech however much noise surrounds it, and a single loud frame (a click) is not.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from asr.model.mask import lengths_to_mask


class NoSpeechHead(nn.Module):
    def __init__(self, d_model: int, hidden: int = 128, window: int = 8):
        super().__init__()
        self.window = window
        self.frame_scorer = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, enc: Tensor, enc_lens: Tensor) -> Tensor:
        # enc: (B, T', D), enc_lens: (B,) -> speech logits (B,)
        frames = self.frame_scorer(enc).squeeze(-1)  # (B, T')
        frames = frames.masked_fill(~lengths_to_mask(enc_lens, frames.size(1)), -torch.inf)
        k = min(self.window, frames.size(1))
        top = frames.topk(k, dim=1).values  # (B, k), padding (-inf) last
        counts = enc_lens.clamp(min=1, max=k)  # inputs shorter than the window average what they have
        valid = torch.arange(k, device=enc.device)[None, :] < counts[:, None]
        return top.masked_fill(~valid, 0.0).sum(dim=1) / counts
