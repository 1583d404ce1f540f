"""`asr train | transcribe | decode | wer | serve` — thin wrappers over the library."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import yaml

from asr.audio import AudioError
from asr.config import VTLN_WARP_RANGE, ConfigError
from asr.data import ManifestError
from asr.decoding import METHODS, DecodeOptions
from asr.evaluate import add_wer_arguments, run_wer


def add_decode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model directory (default: the shipped digits model)")
    p.add_argument("--decoder", choices=METHODS, default="beam", help="search method (default: beam)")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--ctc-weight", type=float, default=None,
                   help="weight of CTC prefix scores in beam search (default: the model's inference.ctc_weight)")
    p.add_argument("--length-penalty", type=float, default=1.0)
    add_vtln_warps_argument(p)
    p.add_argument("--device", default="cpu")


def add_vtln_warps_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vtln-warps", type=warp_list, default=None, metavar="W1,W2,...",
                   help="test-time VTLN: decode with each mel-filter warp, keep the best-scoring result "
                   "(e.g. 0.9,0.95,1,1.05,1.1; 1 = off; default: the model's inference.vtln_warps)")


def warp_list(text: str) -> tuple[float, ...]:
    try:
        warps = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    low, high = VTLN_WARP_RANGE
    if not all(low <= w <= high for w in warps):
        raise argparse.ArgumentTypeError(f"warps must lie in [{low}, {high}], got {text!r}")
    return warps


def decode_options(args: argparse.Namespace, transcriber) -> DecodeOptions:
    ctc_weight = args.ctc_weight
    if ctc_weight is None:
        ctc_weight = transcriber.default_options.ctc_weight if args.decoder == "beam" else 0.0
    return DecodeOptions(
        method=args.decoder, beam_size=args.beam_size, ctc_weight=ctc_weight, length_penalty=args.length_penalty
    )


def parse_overrides(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from asr.config import load_config
    from asr.train import train

    cfg = load_config(args.config, parse_overrides(args.set))
    print(f"model directory: {train(cfg)}")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.transcribe import Transcriber

    transcriber = Transcriber.load(args.model, args.device, args.vtln_warps)
    opts = decode_options(args, transcriber)
    status = 0
    for path in args.files:
        try:
            result = transcriber.transcribe(path, opts, timestamps=args.timestamps)
        except (AudioError, FileNotFoundError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            status = 2
            continue
        if args.json:
            record = asdict(result)
            record.pop("attention")
            print(json.dumps({"file": str(path), **record}))
        else:
            print(result.text if len(args.files) == 1 else f"{path}\t{result.text}")
    return status


def cmd_decode(args: argparse.Namespace) -> int:
    from asr.data import load_manifest
    from asr.transcribe import Transcriber

    utts = load_manifest(args.data)
    transcriber = Transcriber.load(args.model, args.device, args.vtln_warps)
    opts = decode_options(args, transcriber)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for start in range(0, len(utts), args.batch_size):
            chunk = utts[start : start + args.batch_size]
            for utt, result in zip(chunk, transcriber.transcribe_batch([u.audio for u in chunk], opts)):
                f.write(f"{utt.id} {result.text}\n".replace(" \n", "\n"))
    print(f"wrote {len(utts)} hypotheses to {out}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from server.app import serve

    serve(host=args.host, port=args.port, model_dir=args.model)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Transformer speech recognition: train, transcribe, score, serve.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config (resumes if interrupted)")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("transcribe", help="print the transcript of audio files")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per file, with segments and confidence")
    p.add_argument("--timestamps", action="store_true", help="word start/end times (with --json)")
    add_decode_arguments(p)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("decode", help="decode a Kaldi data dir or JSONL manifest into 'utt-id text' lines")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=64)
    add_decode_arguments(p)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("wer", help="score hypotheses against references (WER, CER, S/D/I, alignments)")
    add_wer_arguments(p)
    p.set_defaults(func=run_wer)

    p = sub.add_parser("serve", help="run the transcription web service (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default=None)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ManifestError, AudioError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `asr wer ... | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
