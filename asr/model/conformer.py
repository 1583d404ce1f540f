"""Conformer encoder (Gulati et al. 2020): CMVN -> 4x conv subsampling -> positional encoding ->
torchaudio's Conformer blocks (half-step feed-forward, self-attention, depthwise convolution,
half-step feed-forward). The same front end and output as the Transformer `Encoder`, so the
decoder, the CTC head and the guided attention loss do not know which one they read.

torchaudio's convolution module does not mask padding: the last frames of an utterance shorter
than its batch see the padded frames through the depthwise convolution (and batch norm counts
them while training), so a padded utterance's output differs slightly from its output alone.
"""

from torch import Tensor, nn
from torchaudio.models import Conformer

from asr.config import ModelConfig
from asr.model.embedding import PositionalEncoding
from asr.model.mask import lengths_to_mask
from asr.model.subsampling import Conv2dSubsampling4, GlobalCMVN


class ConformerEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, n_mels: int):
        super().__init__()
        self.cmvn = GlobalCMVN(n_mels)
        self.subsampling = Conv2dSubsampling4(n_mels, cfg.conv_channels, cfg.d_model)
        # torchaudio's blocks carry no positions; the absolute ones (as ESPnet's "abs_pos" Conformer)
        # tell the decoder's cross-attention where in the utterance a frame is.
        self.position = PositionalEncoding(cfg.d_model, cfg.max_positions, cfg.dropout)
        self.blocks = Conformer(
            input_dim=cfg.d_model, num_heads=cfg.n_heads, ffn_dim=cfg.d_ff, num_layers=cfg.encoder_layers,
            depthwise_conv_kernel_size=cfg.conformer_kernel, dropout=cfg.dropout,
        )  # each block ends in a LayerNorm: no final norm needed

    def forward(self, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor]:
        # feats: (B, T, F) raw log-mels; feat_lens: (B,)
        x, lens = self.subsampling(self.cmvn(feats), feat_lens)  # (B, T', D), (B,)
        # The blocks are called one by one with a mask of x's own width: Conformer.forward sizes its
        # mask by max(lens), which fails on a batch padded past its longest input.
        padding = ~lengths_to_mask(lens, x.size(1))  # (B, T') True on padded frames
        x = self.position(x).transpose(0, 1)  # (T', B, D): torchaudio's blocks are time-major
        for block in self.blocks.conformer_layers:
            x = block(x, padding)
        return x.transpose(0, 1), lens  # (B, T', D), (B,)
