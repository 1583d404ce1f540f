"""Transformer encoder-decoder speech recognition with guided attention.

Data flows one way: file -> waveform (audio.py) -> log-mel features (features.py)
-> encoder -> decoder (model/) -> token ids (decoding.py) -> text (tokenizer.py).
"""

__version__ = "0.1.0"
