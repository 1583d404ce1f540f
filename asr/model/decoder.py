"""Autoregressive Transformer decoder: masked self-attention over the tokens so far,
cross-attention over the encoder output. Returns the cross-attention weights on request
(for the guided attention loss, plots, word timings and a search's attention window).

Training feeds whole token sequences at once. A search feeds one token per step, and with a
`DecoderCache` the decoder keeps what the earlier steps computed, as openai/whisper's does:
each layer's self-attention keys and values of the tokens so far (the new token's are
appended), and its cross-attention keys and values of the encoder output (computed once, in
`Decoder.new_cache`). A step then costs one position instead of the whole prefix; its output
equals the last position of a full pass over the prefix (pre-LN blocks and a causal mask: an
earlier position never depends on a later one). Unlike whisper's, a reorder moves only the
tokens' keys and values: a beam search moves prefixes among one utterance's rows, whose
encoder keys and values are the same. Copying those (N, H, T', D/H) tensors at every step,
and the attention's matmul copying the transposed view the projection leaves, took more than
half of the CPU time of a batched beam search (16 utterances, beam 5, profiled); they are
made contiguous once instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from asr.config import ModelConfig
from asr.model.attention import FeedForward, MultiHeadAttention
from asr.model.embedding import PositionalEncoding
from asr.model.mask import lengths_to_mask


@dataclass
class LayerCache:
    cross: tuple[Tensor, Tensor]  # keys, values of the encoder output: (N, H, T', D/H) each
    tokens: tuple[Tensor, Tensor]  # keys, values of the tokens fed so far: (N, H, U, D/H) each

    def append(self, keys_values: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Add the new tokens' keys and values (N, H, 1, D/H) -> those of all tokens (N, H, U + 1, D/H)."""
        self.tokens = tuple(torch.cat([old, new], dim=2) for old, new in zip(self.tokens, keys_values))
        return self.tokens


@dataclass
class DecoderCache:
    """The decoder's keys and values for N prefixes decoded one token per step (module docstring).
    A forward pass with the cache extends it in place."""

    layers: list[LayerCache]
    inputs: Tensor  # (N,): the encoder output (batch row) each prefix decodes

    @property
    def length(self) -> int:
        """Tokens fed so far (the position of the next one)."""
        return self.layers[0].tokens[0].size(2)

    def reorder(self, rows: Tensor) -> None:
        """Row i continues old row rows[i]'s prefix (N,): a beam search keeping, dropping or copying
        prefixes. Only the tokens' keys and values move, so rows[i] must decode the same input as row i."""
        if not torch.equal(self.inputs[rows], self.inputs):
            raise ValueError("a decoder cache's rows can only take prefixes of their own input")
        for layer in self.layers:
            layer.tokens = tuple(t[rows] for t in layer.tokens)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm_self = nn.LayerNorm(cfg.d_model)
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.norm_cross = nn.LayerNorm(cfg.d_model)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.ff = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def new_cache(self, enc: Tensor, rows_per_input: int) -> LayerCache:
        # enc: (B, T', D) -> its cross-attention keys and values for N = B * rows_per_input rows, no
        # tokens yet; repeat_interleave also makes them contiguous (module docstring)
        cross = tuple(t.repeat_interleave(rows_per_input, 0) for t in self.cross_attn.keys_values(enc))  # (N, H, T', D/H)
        empty = cross[0][:, :, :0]  # (N, H, 0, D/H)
        return LayerCache(cross, (empty, empty))

    def forward(
        self, y: Tensor, enc: Tensor, enc_mask: Tensor, need_attention: bool, cache: Optional[LayerCache] = None
    ) -> tuple[Tensor, Optional[Tensor]]:
        # y: (B, U, D) token states (U = 1 with a cache); enc: (B, T', D); enc_mask: (B, 1, 1 | U, T')
        h = self.norm_self(y)
        keys_values = self.self_attn.keys_values(h)  # (B, H, U, D/H) each
        if cache is not None:
            keys_values = cache.append(keys_values)  # and those of the tokens before
        # Causal: position u sees tokens <= u only. Padded tokens sit after the real ones,
        # so the causal mask alone keeps them out of every real position's view. With a cache
        # y is the newest token alone, which sees every token so far: no mask.
        y = y + self.dropout(self.self_attn.attend(h, *keys_values, causal=cache is None)[0])
        cross = cache.cross if cache is not None else self.cross_attn.keys_values(enc)
        context, attn = self.cross_attn.attend(self.norm_cross(y), *cross, enc_mask, need_weights=need_attention)
        y = y + self.dropout(context)
        return y + self.dropout(self.ff(self.norm_ff(y))), attn  # attn: (B, H, U, T') or None


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.position = PositionalEncoding(cfg.d_model, cfg.max_positions, cfg.dropout)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.output = nn.Linear(cfg.d_model, vocab_size)

    def new_cache(self, enc: Tensor, rows_per_input: int = 1) -> DecoderCache:
        """An empty cache for decoding enc (B, T', D) one token per step, in N = B * rows_per_input
        rows (row b * rows_per_input + j decodes input b: a beam's prefixes); every layer's
        cross-attention keys and values computed here once."""
        inputs = torch.arange(enc.size(0), device=enc.device).repeat_interleave(rows_per_input)  # (N,)
        return DecoderCache([layer.new_cache(enc, rows_per_input) for layer in self.layers], inputs)

    def forward(
        self, enc: Tensor, enc_lens: Tensor, tokens: Tensor, need_attention: bool = False,
        cross_mask: Optional[Tensor] = None, cache: Optional[DecoderCache] = None,
    ) -> tuple[Tensor, Optional[list[Tensor]]]:
        # enc: (B, T', D); enc_lens: (B,); tokens: (B, U) starting with SOS, or with a cache the
        # next token alone (B, 1); cross_mask: (B, U, T') bool, True = token position u may
        # attend frame t (a search's window); cache: from new_cache(enc), extended here
        if cache is not None and tokens.size(1) != 1:
            raise ValueError(f"a cached decoder step takes one token per row, got {tokens.size(1)}")
        enc_mask = lengths_to_mask(enc_lens, enc.size(1))[:, None, None, :]  # (B, 1, 1, T')
        if cross_mask is not None:
            enc_mask = enc_mask & cross_mask[:, None]  # (B, 1, U, T')
        y = self.position(self.embed(tokens), cache.length if cache is not None else 0)  # (B, U, D)
        caches = cache.layers if cache is not None else [None] * len(self.layers)
        attentions = []
        for layer, layer_cache in zip(self.layers, caches):
            y, attn = layer(y, enc, enc_mask, need_attention, layer_cache)
            attentions.append(attn)
        logits = self.output(self.norm(y))  # (B, U, V)
        return logits, attentions if need_attention else None
