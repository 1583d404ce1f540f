"""Global CMVN and 4x convolutional subsampling of log-mel frames."""

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
        f_out = ((n_mels - 1) // 2 - 1) // 2
        self.proj = nn.Linear(channels * f_out, d_model)

    @staticmethod
    def output_lengths(lengths: Tensor) -> Tensor:
        return ((lengths - 1) // 2 - 1) // 2

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv(feats.unsqueeze(1))  # (B, D, T', F')
        B, C, T, F = x.shape
        x = self.proj(x.transpose(1, 2).reshape(B, T, C * F))  # (B, T', D)
        return x, self.output_lengths(lengths)
