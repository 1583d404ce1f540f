"""Teach a trained model to say "no speech": non-speech audio, and the no-speech head's training.

`non_speech(kind, ...)` makes audio with no speech in it at a given level: digital
near-silence, white/pink/brown noise, mains hum, DC offset, clicks, tone sequences
(music-like), and babble (several utterances played backwards over each other: the
spectrum and rhythm of speech without any word). `train_no_speech_head` then fits the
model's NoSpeechHead (asr/model/no_speech.py) on the frozen encoder: positives are the
training speech (random gain, noise, and non-speech padding around it, so a word inside
a long noisy recording still counts), negatives are non-speech inputs of every kind.
Only the head learns, so the transcripts of speech are exactly what they were.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import librosa
import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from asr.audio import load_audio
from asr.data import Utterance
from asr.features import fbank
from asr.model import load_model_dir, save_model_dir
from asr.model.no_speech import NoSpeechHead

NON_SPEECH_KINDS = ("lsb", "white", "pink", "brown", "hum", "dc", "clicks", "tones", "babble")


def _coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _tones(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A sequence of notes (harmonic tones with decaying envelopes, sometimes chords): music-like."""
    out = np.zeros(n)
    t = 0
    while t < n:
        length = min(n - t, int(rng.uniform(0.1, 0.8) * sample_rate))
        time = np.arange(length) / sample_rate
        envelope = np.exp(-time * rng.uniform(1.0, 8.0)) * np.minimum(1.0, time / 0.01)
        for _ in range(rng.integers(1, 4)):  # 1-3 notes at once
            f0 = 55.0 * 2 ** (rng.integers(12, 60) / 12)  # A1 * semitones: 110 Hz .. 1.7 kHz
            for h in range(1, 6):
                out[t : t + length] += envelope * np.sin(2 * np.pi * f0 * h * time + rng.uniform(0, 2 * np.pi)) / h
        t += length
    return out


def _babble(n: int, sources: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """2-6 utterances, each reversed and placed at random, summed: speech-like sound with no words."""
    out = np.zeros(n)
    for _ in range(rng.integers(2, 7)):
        src = sources[rng.integers(len(sources))][::-1]
        src = src / (np.sqrt(np.mean(src**2)) + 1e-12)
        reps = np.tile(src, -(-n // len(src)) + 1)
        start = rng.integers(len(src))
        out += reps[start : start + n]
    return out


def non_speech(
    kind: str, seconds: float, level_dbfs: float, sample_rate: int, rng: np.random.Generator,
    babble_sources: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """`seconds` of audio of `kind` (one of NON_SPEECH_KINDS) at RMS `level_dbfs` -> float32 (N,).

    "lsb" ignores the level: +-1 least significant bit of 16-bit audio, the floor of a digital
    recording. "dc" is a constant offset at the level with faint noise on it. "babble" needs
    `babble_sources` (waveforms at `sample_rate`).
    """
    n = max(1, int(seconds * sample_rate))
    if kind == "lsb":
        return (rng.integers(-1, 2, n) / 32768).astype(np.float32)
    if kind in ("white", "pink", "brown"):
        x = _coloured_noise(n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], rng)
    elif kind == "hum":
        f0 = rng.choice([50.0, 60.0])
        time = np.arange(n) / sample_rate
        x = sum(rng.uniform(0.1, 1.0) * np.sin(2 * np.pi * f0 * h * time + rng.uniform(0, 2 * np.pi)) for h in range(1, 8))
        x = x + 0.05 * rng.standard_normal(n)
    elif kind == "dc":
        x = np.sign(rng.uniform(-1, 1)) + 1e-3 * rng.standard_normal(n)
    elif kind == "clicks":
        x = 1e-3 * rng.standard_normal(n)
        x[rng.integers(0, n, max(1, int(seconds * rng.uniform(1, 20))))] = rng.choice([-1.0, 1.0])
    elif kind == "tones":
        x = _tones(n, sample_rate, rng)
    elif kind == "babble":
        if not babble_sources:
            raise ValueError("babble needs babble_sources")
        x = _babble(n, babble_sources, rng)
    else:
        raise ValueError(f"unknown non-speech kind {kind!r}; known: {NON_SPEECH_KINDS}")
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) * 10 ** (level_dbfs / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class NoSpeechTraining:
    examples: int = 12000  # of each class, speech at most all of the given (the digits recipe: 10,270; 4,000 drew far worse heads)
    max_seconds: float = 12.0  # longest negative, and longest padded positive
    level_dbfs: tuple[float, float] = (-90.0, -10.0)  # negatives' RMS level
    speech_gain_db: tuple[float, float] = (-30.0, 10.0)
    speech_snr_db: tuple[float, float] = (5.0, 40.0)  # noise added to half of the positives
    babble_share: float = 0.25  # of the negatives: reversed babble is the hardest kind to tell from speech
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    valid_fraction: float = 0.1
    seed: int = 0


def _speech_example(wave: np.ndarray, cfg: NoSpeechTraining, sample_rate: int, rng: np.random.Generator,
                    sources: Sequence[np.ndarray]) -> np.ndarray:
    """A speech utterance as a user might send it: cut tight to the voice or not, any level, maybe
    noisy, maybe inside non-speech."""
    if rng.random() < 0.3:  # training utterances have pauses around them; a user's file may have none
        wave = librosa.effects.trim(wave, top_db=rng.uniform(20.0, 40.0))[0]
    wave = wave * 10 ** (rng.uniform(*cfg.speech_gain_db) / 20)
    speech_db = 10 * math.log10(np.mean(wave**2) + 1e-12)
    if rng.random() < 0.5:
        noise = _coloured_noise(len(wave), rng.choice([0.0, 1.0, 2.0]), rng)
        wave = wave + noise * 10 ** ((speech_db - rng.uniform(*cfg.speech_snr_db)) / 20)
    if rng.random() < 0.5:
        room = max(0.0, cfg.max_seconds - len(wave) / sample_rate)
        kind = rng.choice([k for k in NON_SPEECH_KINDS if k != "lsb"])
        level = speech_db - rng.uniform(10.0, 40.0)
        pads = [non_speech(kind, rng.uniform(0, room / 2), level, sample_rate, rng, sources) for _ in range(2)]
        wave = np.concatenate([pads[0], wave, pads[1]])
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


@torch.inference_mode()
def _encode_all(model, waves: list[np.ndarray], features, batch_seconds: float = 120.0) -> list[torch.Tensor]:
    """Each wave (N,) -> its encoder output (T', D), float16 to keep thousands in memory."""
    out: list[torch.Tensor] = [None] * len(waves)  # type: ignore[list-item]
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    batch: list[int] = []
    for i in order + [None]:  # None flushes the last batch
        if i is not None and (len(batch) + 1) * len(waves[i]) <= batch_seconds * features.sample_rate:
            batch.append(i)
            continue
        if batch:
            feats = [fbank(torch.from_numpy(waves[j]), features) for j in batch]
            lens = torch.tensor([len(f) for f in feats])
            enc, enc_lens = model.encode(pad_sequence(feats, batch_first=True), lens)  # (B, T', D)
            for j, e, n in zip(batch, enc, enc_lens):
                out[j] = e[: int(n)].half()
        batch = [i] if i is not None else []
    return out


def _batches(encs: list[torch.Tensor], labels: torch.Tensor, idx: list[int], size: int):
    for s in range(0, len(idx), size):
        chunk = idx[s : s + size]
        lens = torch.tensor([len(encs[i]) for i in chunk])
        yield pad_sequence([encs[i].float() for i in chunk], batch_first=True), lens, labels[chunk]


def train_no_speech_head(
    model_dir: str | Path, speech: Sequence[Utterance], out_dir: str | Path, cfg: NoSpeechTraining = NoSpeechTraining()
) -> dict:
    """Fit a no-speech head on `model_dir`'s frozen encoder; write the model with it to `out_dir`.

    Returns figures on the held-out tenth of the examples: accuracy per class at the model's
    threshold (inference.no_speech_threshold).
    """
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    model, tokenizer, exp_cfg = load_model_dir(model_dir)
    sr = exp_cfg.features.sample_rate
    picked = [speech[i] for i in rng.permutation(len(speech))[: cfg.examples]]
    sources = [load_audio(u.audio, sr) for u in picked[: max(1, len(picked) // 10)]]  # for babble

    def example(i: int) -> np.ndarray:
        """Examples 0..n-1 are speech, n..2n-1 non-speech."""
        if i < len(picked):
            return _speech_example(load_audio(picked[i].audio, sr), cfg, sr, rng, sources)
        others = [k for k in NON_SPEECH_KINDS if k != "babble"]
        kind = "babble" if rng.random() < cfg.babble_share else rng.choice(others)
        return non_speech(kind, rng.uniform(0.3, cfg.max_seconds), rng.uniform(*cfg.level_dbfs), sr, rng, sources)

    # Encoded a few hundred at a time, so only encoder outputs (float16) pile up, never the audio.
    n = 2 * len(picked)
    encs = [e for s in range(0, n, 256) for e in _encode_all(model, [example(i) for i in range(s, min(n, s + 256))], exp_cfg.features)]
    labels = torch.cat([torch.ones(len(picked)), torch.zeros(len(picked))])  # 1 = speech
    order = rng.permutation(len(encs)).tolist()
    n_valid = int(len(order) * cfg.valid_fraction)
    valid, train = order[:n_valid], order[n_valid:]
    head = NoSpeechHead(exp_cfg.model.d_model)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr)
    for _ in range(cfg.epochs):
        random.Random(int(rng.integers(1 << 31))).shuffle(train)
        head.train()
        for enc, lens, y in _batches(encs, labels, train, cfg.batch_size):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(enc, lens), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    head.eval()
    threshold = exp_cfg.inference.no_speech_threshold
    with torch.inference_mode():
        preds = [(torch.sigmoid(-head(enc, lens)) <= threshold, y.bool()) for enc, lens, y in _batches(encs, labels, valid, 256)]
    said_speech = torch.cat([p for p, _ in preds])
    is_speech = torch.cat([y for _, y in preds])
    figures = {
        "valid_speech_kept": float(said_speech[is_speech].float().mean()),
        "valid_non_speech_rejected": float((~said_speech[~is_speech]).float().mean()),
        "valid_examples": int(len(is_speech)),
    }
    model.no_speech_head = head
    exp_cfg = replace(exp_cfg, model=replace(exp_cfg.model, no_speech_head=True))
    save_model_dir(out_dir, model, tokenizer, exp_cfg, carry_from=model_dir)
    return figures
