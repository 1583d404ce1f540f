"""Global CMVN and 4x convolutional subsampling of log-mel frames."""

from __future__ import annotations

from torch import Tensor, nn


class GlobalCMVN(nn.Module):
    """Normalises features with mean/std computed on the training set, stored as buffers
    so they travel inside the model's weights file."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mean", nn.init.zeros_(Tensor(n_mels)))
        self.register_buffer("std", nn.init.ones_(Tensor(n_mels)))

    def forward(self, feats: Tensor) -> Tensor:
        # feats: (B, T, F)
        return (feats - self.mean) / self.std


class Conv2dSubsampling4(nn.Module):
    """Two 3x3 stride-2 convolutions: (B, T, F) -> (B, T', D) with T' = ((T - 1) // 2 - 1) // 2."""

    factor = 4

    def __init__(self, n_mels: int, channels: int, d_model: int):
        super().__init__()
        # `channels` is kept small on purpose: with d_model channels these two convolutions
        # cost more than all the Transformer layers of a small model together.
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2), nn.ReLU(), nn.Conv2d(channels, channels, 3, stride=2), nn.ReLU()
        )
        bins_out = self.output_lengths(n_mels)  # F': the convolutions shrink the mel axis like the time axis
        self.proj = nn.Linear(channels * bins_out, d_model)

    @staticmethod
    def output_lengths(lengths: Tensor | int) -> Tensor | int:
        """T -> T' (also F -> F'): each unpadded 3-wide stride-2 convolution maps n to (n - 1) // 2."""
        return ((lengths - 1) // 2 - 1) // 2

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        # feats: (B, T, F), lengths: (B,)
        x = self.conv(feats.unsqueeze(1))  # (B, 1, T, F) -> (B, C, T', F'), C = channels
        batch, channels, frames, bins = x.shape
        x = self.proj(x.transpose(1, 2).reshape(batch, frames, channels * bins))  # (B, T', C * F') -> (B, T', D)
        return x, self.output_lengths(lengths)  # (B, T', D), (B,)
