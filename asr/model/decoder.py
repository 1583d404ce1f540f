"""Autoregressive Transformer decoder: masked self-attention over the tokens so far,
cross-attention over the encoder output. Returns the cross-attention weights on request
(for the guided attention loss, plots and word timings)."""

from typing import Optional

from torch import Tensor, nn

from asr.config import ModelConfig
from asr.model.attention import FeedForward, MultiHeadAttention
from asr.model.embedding import PositionalEncoding
from asr.model.mask import lengths_to_mask


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

    def forward(
        self, y: Tensor, enc: Tensor, enc_mask: Tensor, need_attention: bool
    ) -> tuple[Tensor, Optional[Tensor]]:
        # y: (B, U, D) token states; enc: (B, T', D); enc_mask: (B, 1, 1 | U, T')
        h = self.norm_self(y)
        # Causal: position u sees tokens <= u only. Padded tokens sit after the real ones,
        # so the causal mask alone keeps them out of every real position's view.
        y = y + self.dropout(self.self_attn(h, h, causal=True)[0])
        context, attn = self.cross_attn(self.norm_cross(y), enc, enc_mask, need_weights=need_attention)
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

    def forward(
        self, enc: Tensor, enc_lens: Tensor, tokens: Tensor, need_attention: bool = False,
        cross_mask: Optional[Tensor] = None,
    ) -> tuple[Tensor, Optional[list[Tensor]]]:
        # enc: (B, T', D); enc_lens: (B,); tokens: (B, U) starting with SOS;
        # cross_mask: (B, U, T') bool, True = token position u may attend frame t (a search's window)
        enc_mask = lengths_to_mask(enc_lens, enc.size(1))[:, None, None, :]  # (B, 1, 1, T')
        if cross_mask is not None:
            enc_mask = enc_mask & cross_mask[:, None]  # (B, 1, U, T')
        y = self.position(self.embed(tokens))  # (B, U, D)
        attentions = []
        for layer in self.layers:
            y, attn = layer(y, enc, enc_mask, need_attention)
            attentions.append(attn)
        logits = self.output(self.norm(y))  # (B, U, V)
        return logits, attentions if need_attention else None
