"""Sinusoidal positional encoding (Vaswani et al. 2017), added to scaled inputs."""

import math

import torch
from torch import Tensor, nn


class PositionalEncoding(nn.Module):
    def __init__(self, d_model: int, max_positions: int, dropout: float):
        super().__init__()
        position = torch.arange(max_positions).unsqueeze(1)  # (P, 1)
        freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (D/2,)
        pe = torch.zeros(max_positions, d_model)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)
        # A buffer, not a parameter: it moves with .to(device) but is never trained or saved.
        self.register_buffer("pe", pe, persistent=False)
        self.scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        # x: (B, T, D) at positions offset .. offset + T - 1 (offset > 0: the tokens after a decoding cache's)
        end = offset + x.size(1)
        if end > self.pe.size(0):
            raise ValueError(f"sequence of {end} positions is longer than max_positions={self.pe.size(0)}")
        return self.dropout(x * self.scale + self.pe[offset:end])
