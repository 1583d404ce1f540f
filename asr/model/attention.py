"""Multi-head attention: fused SDPA when the weights are not needed, explicit softmax when they are."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _split(self, x: Tensor) -> Tensor:
        # (B, T, D) -> (B, H, T, D/H)
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B, Tk, D) -> keys, values (B, H, Tk, D/H) each: what a decoding cache keeps."""
        k, v = self.key_value(memory).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(
        self,
        x: Tensor,  # (B, Tq, D) queries
        memory: Tensor,  # (B, Tk, D) keys and values (x itself for self-attention)
        mask: Optional[Tensor] = None,  # bool (B, 1, Tq|1, Tk), True = may attend
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        return self.attend(x, *self.keys_values(memory), mask, causal, need_weights)

    def attend(
        self,
        x: Tensor,  # (B, Tq, D) queries
        k: Tensor,  # (B, H, Tk, D/H) keys, from keys_values or a decoding cache
        v: Tensor,  # (B, H, Tk, D/H) values
        mask: Optional[Tensor] = None,  # bool (B, 1, Tq|1, Tk), True = may attend
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        q = self._split(self.query(x))  # (B, H, Tq, D/H)
        p = self.dropout if self.training else 0.0
        if need_weights:
            # The guided attention loss and the alignment plots need the probabilities
            # themselves, which the fused kernel does not return.
            scores = q @ k.transpose(-2, -1) / self.d_head**0.5  # (B, H, Tq, Tk)
            if causal:
                Tq, Tk = scores.shape[-2:]
                future = torch.ones(Tq, Tk, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            # fp32: under bf16 autocast on CPU softmax stays in bf16, and these weights feed the guided loss
            weights = scores.float().softmax(dim=-1)  # (B, H, Tq, Tk)
            context = F.dropout(weights, p, self.training) @ v  # autocast casts the matmul back down
        else:
            weights = None
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal and mask is None)
        B, H, Tq, Dh = context.shape
        return self.out(context.transpose(1, 2).reshape(B, Tq, H * Dh)), weights


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
