"""Transformer encoder: CMVN -> 4x conv subsampling -> positional encoding -> pre-LN blocks."""

from torch import Tensor, nn

from asr.config import ModelConfig
from asr.model.attention import FeedForward, MultiHeadAttention
from asr.model.embedding import PositionalEncoding
from asr.model.mask import lengths_to_mask
from asr.model.subsampling import Conv2dSubsampling4, GlobalCMVN


class EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.ff = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        # x: (B, T', D); mask: (B, 1, 1, T') True on real frames
        h = self.norm_attn(x)
        x = x + self.dropout(self.attn(h, h, mask)[0])
        return x + self.dropout(self.ff(self.norm_ff(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, n_mels: int):
        super().__init__()
        self.cmvn = GlobalCMVN(n_mels)
        self.subsampling = Conv2dSubsampling4(n_mels, cfg.conv_channels, cfg.d_model)
        self.position = PositionalEncoding(cfg.d_model, cfg.max_positions, cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor]:
        # feats: (B, T, F) raw log-mels; feat_lens: (B,)
        x, lens = self.subsampling(self.cmvn(feats), feat_lens)  # (B, T', D), (B,)
        x = self.position(x)
        mask = lengths_to_mask(lens, x.size(1))[:, None, None, :]  # (B, 1, 1, T')
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x), lens
