"""Typed configuration: frozen dataclasses loaded from (and saved to) YAML.

One experiment config (`ExperimentConfig`) holds everything a run needs; it is
copied into the experiment directory and saved inside every checkpoint and
exported model, so a model directory always says how it was built.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
import yaml


class ConfigError(ValueError):
    """A configuration file or value that cannot be used."""


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel filterbank front-end (Kaldi-compatible fbank)."""

    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0  # Hz: lowest mel filter edge
    high_freq: float = 0.0  # Hz: highest mel filter edge; 0 = Nyquist. A model trained on
    # telephone-band (8 kHz) audio should stop below 4 kHz, so wide-band input looks the same.


@dataclass(frozen=True)
class AugmentConfig:
    """Training-only augmentation. Never applied at inference."""

    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    freq_masks: int = 2
    freq_mask_width: int = 20  # F: max bins per frequency mask
    time_masks: int = 2
    time_mask_ratio: float = 0.05  # max width of one time mask, as a fraction of T
    noise_prob: float = 0.0  # probability of adding white noise
    noise_snr_db: tuple[float, float] = (15.0, 40.0)  # SNR range when noise is added
    gain_db: tuple[float, float] = (0.0, 0.0)  # random gain range
    pad_prob: float = 0.0  # probability of padding both ends with faint noise (silence as recorded)
    pad_seconds: float = 1.0  # at most this much padding on each side
    pad_floor_db: tuple[float, float] = (25.0, 60.0)  # padding level: this far below the loudest 10 ms
    vtlp_warp: tuple[float, float] = (1.0, 1.0)  # range of the random mel-filter warp (VTLP); (1, 1) = off
    # Epochs 0 .. start_epoch - 1 train on the recordings as they are: a model from scratch first learns
    # to read the audio, which heavy augmentation delays (recipes/speechocean762/RESULTS.md); 0 = always.
    start_epoch: int = 0

    def __post_init__(self) -> None:
        if self.start_epoch < 0:
            raise ConfigError(f"augment.start_epoch: expected a whole number >= 0, got {self.start_epoch}")


@dataclass(frozen=True)
class TokenizerConfig:
    kind: str = "word"  # "char" | "word" | "bpe"
    vocab_size: int = 0  # BPE only: SentencePiece vocabulary size


ENCODERS = ("transformer", "conformer")


@dataclass(frozen=True)
class ModelConfig:
    """The network's sizes. Its input size is FeatureConfig.num_mel_bins (given to ASRModel), not set here."""

    conv_channels: int = 64  # channels of the convolutional subsampling
    d_model: int = 144
    n_heads: int = 4
    d_ff: int = 576
    encoder_layers: int = 6
    decoder_layers: int = 3
    dropout: float = 0.1
    max_positions: int = 5000
    ctc: bool = True  # auxiliary CTC head on the encoder
    no_speech_head: bool = False  # P(no speech) head on the encoder (asr/model/no_speech.py), trained after the model
    encoder: str = "transformer"  # "transformer" | "conformer" (torchaudio's Conformer blocks after the same subsampling)
    conformer_kernel: int = 31  # conformer only: width of the depthwise convolution, in encoder frames (odd)
    lm_layers: int = 0  # LSTM language model over the tokens for shallow fusion (asr/model/lm.py), trained after the model; 0 = none
    lm_dim: int = 512  # its embedding and hidden size

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ConfigError(f"model.encoder: expected one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.lm_layers < 0 or self.lm_dim < 1:
            raise ConfigError(f"model.lm_layers / lm_dim: expected lm_layers >= 0 and lm_dim >= 1, got {self.lm_layers} / {self.lm_dim}")
        if self.conformer_kernel < 1 or self.conformer_kernel % 2 == 0:
            raise ConfigError(f"model.conformer_kernel: expected an odd width >= 1, got {self.conformer_kernel}")


@dataclass(frozen=True)
class LossConfig:
    label_smoothing: float = 0.1
    ctc_weight: float = 0.3  # loss = (1 - w) * attention CE + w * CTC (+ guided)
    guided_weight: float = 1.0  # weight of the guided attention loss; 0 turns it off
    guided_sigma: float = 0.3  # g in W[n,t] = 1 - exp(-(n/N - t/T)^2 / (2 g^2)), on every decoder layer and head
    guide_eos: bool = False  # also guide the EOS row, onto the end of the speech (n/N = 1); off: EOS attends freely


@dataclass(frozen=True)
class ScheduledSamplingConfig:
    """Two-pass scheduled sampling for a Transformer decoder (off by default)."""

    max_prob: float = 0.0  # probability of feeding a model prediction; 0 = off
    start_step: int = 0  # no sampling before this step
    ramp_steps: int = 1000  # linear ramp from 0 to max_prob over this many steps


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3  # peak learning rate
    warmup_steps: int = 1000
    weight_decay: float = 0.01
    grad_clip: float = 5.0


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEV_DECODERS = ("greedy", "ctc_greedy")  # TrainConfig.dev_decoder


@dataclass(frozen=True)
class TrainConfig:
    train_data: str = ""  # Kaldi data dir or JSONL manifest
    dev_data: str = ""  # chooses the checkpoints (by WER)
    # the search that scores dev_data: "greedy" (attention decoder) or "ctc_greedy" (the CTC head), for
    # runs whose attention decoder reads the audio only long after the CTC head does
    dev_decoder: str = "greedy"
    report_data: str = ""  # optional: WER logged at every evaluation, never used to choose
    exp_dir: str = "exp/default"
    epochs: int = 20
    max_frames_per_batch: int = 20000  # length-bucketed batches: sum of fbank frames
    max_steps: int = 0  # > 0: stop after this many steps
    seed: int = 0
    num_workers: int = 1
    device: str = "auto"  # "auto" | "cpu" | "cuda"; under torchrun each process takes cuda:LOCAL_RANK
    precision: str = "auto"  # "auto" (bf16 on a GPU, fp32 on CPU) | "fp32" | "bf16" | "fp16" (GPU only)
    accumulate_steps: int = 1  # batches whose gradients are averaged into one optimiser step
    log_every: int = 20
    eval_every_steps: int = 0  # 0 = once per epoch
    checkpoint_every_steps: int = 200  # last.pt for resuming after a kill
    dev_max_utts: int = 0  # 0 = whole dev set
    # A model directory (or a shipped model's name) whose weights, CMVN statistics and tokenizer
    # start the run: fine-tuning. Its model and features sections must be this config's.
    init_model: str = ""
    # Joint training on other transcribed speech (Kaldi dir or JSONL), e.g. another language task
    # of the same voices: every step adds aux_weight x the per-character CTC loss of a character
    # head over the encoder on one batch of it. The head is training's alone (not exported).
    aux_data: str = ""
    aux_weight: float = 0.0
    keep_checkpoints: int = 5  # best-by-dev-WER checkpoints kept
    average_best: int = 3  # average this many best checkpoints into the final model

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.dev_decoder not in DEV_DECODERS:
            raise ConfigError(f"train.dev_decoder: expected one of {', '.join(DEV_DECODERS)}, got {self.dev_decoder!r}")
        if self.accumulate_steps < 1:
            raise ConfigError(f"train.accumulate_steps: expected a whole number >= 1, got {self.accumulate_steps}")
        if not (math.isfinite(self.aux_weight) and self.aux_weight >= 0) or bool(self.aux_data) != (self.aux_weight > 0):
            raise ConfigError(
                f"train.aux_data and train.aux_weight go together: a data set and a weight > 0, or neither "
                f"(got {self.aux_data!r} and {self.aux_weight})"
            )


VTLN_WARP_RANGE = (0.5, 1.5)  # accepted test-time VTLN warps (InferenceConfig.vtln_warps)


def check_vtln_warps(warps: Iterable[float], name: str = "inference.vtln_warps") -> tuple[float, ...]:
    """The one check of test-time VTLN warps, wherever they are given (the config, the CLI, the
    service's settings): one or more, each in VTLN_WARP_RANGE. -> the warps as a tuple; ConfigError
    naming `name` otherwise."""
    warps = tuple(warps)
    low, high = VTLN_WARP_RANGE
    if not warps or not all(low <= w <= high for w in warps):  # NaN is refused too
        raise ConfigError(f"{name}: need one or more warps in [{low}, {high}], got {list(warps)}")
    return warps


def check_attention_window(window: Iterable[int], name: str = "attention_window") -> tuple[int, ...]:
    """The one check of an attention window (asr.decoding.DecodeOptions.attention_window), wherever it
    is given: () (off) or two whole numbers (first, last), first <= last. -> the window as a tuple;
    ConfigError naming `name` otherwise."""
    window = tuple(window)
    whole = all(isinstance(x, int) and not isinstance(x, bool) for x in window)
    if window and not (len(window) == 2 and whole and window[0] <= window[1]):
        raise ConfigError(f"{name}: need [] (off) or two whole numbers [first, last] with first <= last, got {list(window)}")
    return window


def check_eos_penalty(penalty: float, window: tuple[int, ...], name: str = "eos_penalty") -> None:
    """The one check of an EOS penalty: finite, >= 0, and 0 without an attention window (without one
    the attention returns to words already read, and a decoder kept from ending loops). ConfigError otherwise."""
    if not (isinstance(penalty, (int, float)) and 0 <= penalty < float("inf")):
        raise ConfigError(f"{name}: need a number >= 0, got {penalty!r}")
    if penalty > 0 and not window:
        raise ConfigError(f"{name}: {penalty} needs an attention window (without one the decoder loops); set it to 0")


def check_min_tokens(n: int, name: str = "min_tokens") -> None:
    """The one check of a minimum hypothesis length (asr.decoding.DecodeOptions.min_tokens): a whole
    number >= 0. ConfigError naming `name` otherwise."""
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        raise ConfigError(f"{name}: expected a whole number >= 0, got {n!r}")


@dataclass(frozen=True)
class InferenceConfig:
    """How the Transcriber cuts long recordings: pieces close to the training lengths decode best."""

    max_segment_seconds: float = 20.0
    min_segment_seconds: float = 10.0
    max_batch_seconds: float = 160.0  # padded audio per decoding batch
    ctc_weight: float = 0.0  # default weight of CTC prefix scores in beam search (models with a CTC head)
    # Test-time VTLN: each piece is decoded once per mel-filter warp (asr.features.fbank) and the
    # hypothesis with the best length-normalised score is kept; (1.0,) = off. Costs one decode per warp.
    vtln_warps: tuple[float, ...] = (1.0,)
    # No words from non-speech: a piece whose loudest 10 ms (DC removed) is below min_speech_dbfs is not
    # decoded, one whose P(no speech) from the model's no-speech head exceeds no_speech_threshold gives
    # no words, nor one whose hypothesis has a confidence (asr.decoding.Hypothesis) below min_confidence.
    min_speech_dbfs: float = -70.0
    no_speech_threshold: float = 0.5
    min_confidence: float = 0.0
    # Default attention window of the searches (asr.decoding.DecodeOptions.attention_window): encoder
    # frames [first, last] around the previous token's attention peak that the next token may attend;
    # [] = off, the attention sees the whole piece.
    attention_window: tuple[int, ...] = ()
    eos_penalty: float = 0.0  # default DecodeOptions.eos_penalty: subtracted from EOS's log-prob; needs the window
    lm_weight: float = 0.0  # default DecodeOptions.lm_weight of beam search: shallow fusion with the model's language model
    # default DecodeOptions.min_tokens: a piece the no-speech gate let through gets at least this many tokens
    min_tokens: int = 0
    # Seconds of each piece's own noise floor added before and after it for the decoder
    # (asr.transcribe.with_pauses): for models trained on utterances with pauses around them, which a file
    # cut tight to the voice lacks; 0 = none (a model trained on tight-cut audio). The no-speech head always
    # gets its own 0.2 s (asr.transcribe.HEAD_PAUSE_SECONDS).
    pause_seconds: float = 0.0

    def __post_init__(self) -> None:
        check_vtln_warps(self.vtln_warps)
        check_min_tokens(self.min_tokens, "inference.min_tokens")
        if not 0.0 <= self.min_confidence < 1.0:
            raise ConfigError(f"inference.min_confidence: expected 0 <= value < 1, got {self.min_confidence}")
        if not 0.0 <= self.pause_seconds <= 1.0:
            raise ConfigError(f"inference.pause_seconds: expected 0 to 1 seconds, got {self.pause_seconds}")
        check_attention_window(self.attention_window, "inference.attention_window")
        check_eos_penalty(self.eos_penalty, self.attention_window, "inference.eos_penalty")


@dataclass(frozen=True)
class ExperimentConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    scheduled_sampling: ScheduledSamplingConfig = field(default_factory=ScheduledSamplingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def __post_init__(self) -> None:
        if self.train.dev_decoder == "ctc_greedy" and not self.model.ctc:
            raise ConfigError("train.dev_decoder: ctc_greedy needs the CTC head (model.ctc: true)")


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Turn a YAML value into the dataclass field type `tp` (recursively)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = typing.get_args(tp)[0]
        return tuple(_convert(item, v, where) for v in value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type, data: Optional[dict], where: str = "config") -> Any:
    """Build dataclass `cls` from a dict, rejecting unknown keys with a clear error."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


# Keys that config files written by earlier versions may hold, for settings since removed:
# (section, key) -> (the value that left it without effect, why it went). A file is read as
# before when it holds that value (the key is dropped); any other value is a ConfigError,
# since this code can no longer do what the file asks.
RETIRED_KEYS: dict[tuple[str, str], tuple[Any, str]] = {
    ("features", "utterance_cmn"): (False, "no per-utterance mean normalisation"),
    ("loss", "guided_layers"): (None, "the guide covers every decoder layer"),
    ("loss", "guided_heads"): (None, "the guide covers every head"),
    ("loss", "guided_decay_steps"): (0, "the guided weight is constant"),
    ("train", "amp"): (True, "train.precision replaces it: auto is amp: true, fp32 is amp: false"),
}


def _drop_retired_keys(data: dict, where: str) -> None:
    """Remove the retired keys from the sections of `data` (in place), checking their values."""
    features = data.get("features") if isinstance(data.get("features"), dict) else {}
    mel_bins = features.get("num_mel_bins", FeatureConfig.num_mel_bins)
    retired = {**RETIRED_KEYS, ("model", "n_mels"): (mel_bins, "the model's input size is features.num_mel_bins")}
    for (section, key), (no_effect, why) in retired.items():
        values = data.get(section)
        if not isinstance(values, dict) or key not in values:
            continue
        value = values.pop(key)
        if value != no_effect:
            raise ConfigError(f"{where}: {section}.{key} was removed ({why}); it is read only as {no_effect!r}, got {value!r}")


def experiment_config(data: dict, where: str = "config") -> ExperimentConfig:
    """ExperimentConfig from a dict of sections as a config file holds it (retired keys checked and dropped)."""
    data = {section: dict(v) if isinstance(v, dict) else v for section, v in data.items()}  # `data` is left as it was
    _drop_retired_keys(data, where)
    return from_dict(ExperimentConfig, data, where)


def to_dict(cfg: Any) -> dict:
    """Dataclass -> plain dict of YAML-safe values (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def yaml_problem(e: yaml.YAMLError) -> str:
    """One line saying what is wrong with a YAML text and where (PyYAML's own message spans several)."""
    problem = getattr(e, "problem", None) or "not valid YAML"
    mark = getattr(e, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def load_config(path: str | Path, overrides: Optional[dict] = None) -> ExperimentConfig:
    """Read an ExperimentConfig from YAML; `overrides` maps "section.key" to a value."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory; give the path of a YAML config file") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a config is YAML text") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {yaml_problem(e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (features:, model:, train:, ...), got {data!r}")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"override {dotted!r} must look like section.key")
        if not isinstance(data.setdefault(section, {}), dict):
            raise ConfigError(f"{path}: {section}: expected a mapping, got {data[section]!r}")
        data[section][key] = value
    return experiment_config(data, str(path))


def resolve_device(name: str) -> torch.device:
    """A device name ("auto", "cpu", "cuda", "cuda:N") -> a device this machine has; ConfigError otherwise.
    "auto" is the GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r}: CUDA is not available on this machine; use cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
