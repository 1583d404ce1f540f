"""`asr train | transcribe | decode | wer | serve` — thin wrappers over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, TextIO

import yaml

from asr.audio import AudioError
from asr.config import ConfigError, check_attention_window, check_vtln_warps, resolve_device, yaml_problem
from asr.data import ManifestError
from asr.decoding import MAX_BEAM_SIZE, METHODS, DecodeOptions
from asr.lm import LMTraining


class UsageError(Exception):
    """A command line that cannot be carried out as given (checked after parsing)."""


# Mistakes a user can make in the command line or in the files it names: main() prints
# them as one line and exits 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (UsageError, ConfigError, ManifestError, AudioError, ValueError, FileNotFoundError)


def add_decode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default=None, help="model directory or shipped model name, e.g. digits (default: digits)"
    )
    p.add_argument("--decoder", choices=METHODS, default="beam", help="search method (default: beam)")
    p.add_argument("--beam-size", type=int_in_range(1, MAX_BEAM_SIZE), default=5,
                   help=f"beam width, 1 to {MAX_BEAM_SIZE} (default: 5)")
    p.add_argument("--ctc-weight", type=float, default=None,
                   help="weight of CTC prefix scores in beam search (default: the model's inference.ctc_weight)")
    p.add_argument("--lm-weight", type=float, default=None,
                   help="weight of the model's language model in beam search (default: the model's inference.lm_weight)")
    p.add_argument("--length-penalty", type=float, default=None, help="alpha in score / n ** alpha (default: the model's, 1.0)")
    p.add_argument("--attention-window", type=attention_window, default=None, metavar="FIRST,LAST|off",
                   help="each token may attend only encoder frames (40 ms) FIRST..LAST after the previous token's "
                   "attention peak, e.g. 4,24; off = all frames (default: the model's inference.attention_window)")
    p.add_argument("--eos-penalty", type=float, default=None,
                   help="subtracted from the end-of-sentence log-prob at each step; needs an attention window "
                   "(default: the model's inference.eos_penalty with its window, 0 without)")
    add_vtln_warps_argument(p)
    p.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")


def int_in_range(low: int, high: Optional[int] = None) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high] (high None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return value

    return parse


def device_name(text: str) -> str:
    """An argparse type: a device this machine has (asr.config.resolve_device)."""
    try:
        return str(resolve_device(text))
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_file(text: str) -> Path:
    """An argparse type: a file path to write (refused at once if it is a directory)."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give the path of the file to write")
    return Path(text)


def add_vtln_warps_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vtln-warps", type=warp_list, default=None, metavar="W1,W2,...",
                   help="test-time VTLN: decode with each mel-filter warp, keep the best-scoring result "
                   "(e.g. 0.9,0.95,1,1.05,1.1; 1 = off; default: the model's inference.vtln_warps)")


def comma_separated(text: str, convert: Callable[[str], object], expected: str) -> tuple:
    """An argparse value "a,b,..." -> (convert(a), convert(b), ...); "expected ..." otherwise."""
    try:
        return tuple(convert(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def config_checked(check: Callable, value: tuple, name: str) -> tuple:
    """`check(value, name)`, the config's own check of a value, its ConfigError told as argparse tells errors."""
    try:
        return check(value, name)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def warp_list(text: str) -> tuple[float, ...]:
    return config_checked(check_vtln_warps, comma_separated(text, float, "comma-separated numbers"), "warps")


def attention_window(text: str) -> tuple[int, ...]:
    """An argparse type: "off" -> (), "FIRST,LAST" -> (FIRST, LAST), checked as the config checks it."""
    if text.strip().lower() == "off":
        return ()
    window = comma_separated(text, int, "off or FIRST,LAST (whole numbers)")
    return config_checked(check_attention_window, window, "attention window")


def decode_options(args: argparse.Namespace, transcriber) -> DecodeOptions:
    return transcriber.options(
        args.decoder, args.beam_size, args.ctc_weight, args.length_penalty, args.attention_window, args.eos_penalty,
        args.lm_weight,
    )


def parse_overrides(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML: {yaml_problem(e)}") from None
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from asr.config import load_config
    from asr.train import train

    cfg = load_config(args.config, parse_overrides(args.set))  # a bad config is told once, before any launch
    if args.nproc > 1:
        return launch_training(args.nproc, [args.config, *(f"--set={item}" for item in args.set)])
    model_dir = train(cfg)
    if os.environ.get("RANK", "0") == "0":  # torchrun's other processes stay quiet
        print(f"model directory: {model_dir}")
    return 0


def launch_training(nproc: int, train_args: list[str]) -> int:
    """Run `asr train TRAIN_ARGS` in `nproc` processes on this machine through torchrun's elastic
    launcher (torch.distributed.run); -> the exit status of the first process that failed, else 0."""
    if "WORLD_SIZE" in os.environ:
        raise UsageError("--nproc: this process is already one of torchrun's; leave --nproc out")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    try:
        run(get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "asr", "train", *train_args]))
    except ChildFailedError as e:
        status = next(iter(e.failures.values())).exitcode
        return status if status > 0 else 1  # < 0: killed by a signal
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from asr.train import export_run

    print(f"model directory: {export_run(args.exp_dir, args.out, args.steps)}")
    return 0


def cmd_train_no_speech(args: argparse.Namespace) -> int:
    from asr.data import load_manifest
    from asr.no_speech import NoSpeechTraining, train_no_speech_head

    cfg = NoSpeechTraining(seed=args.seed)
    if args.examples is not None:
        cfg = replace(cfg, examples=args.examples)
    speech = [u for data in args.speech for u in load_manifest(data)]
    figures = train_no_speech_head(args.model, speech, args.out or args.model, cfg)
    print(json.dumps(figures))
    return 0


def cmd_train_lm(args: argparse.Namespace) -> int:
    from asr.lm import train_lm

    cfg = LMTraining(layers=args.layers, dim=args.dim, epochs=args.epochs, seed=args.seed)
    print(json.dumps(train_lm(args.model, args.text, args.dev, args.out or args.model, cfg,
                              log=lambda line: print(line, file=sys.stderr))))
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.transcribe import Transcriber

    transcriber = Transcriber.load(args.model, args.device, args.vtln_warps)
    opts = decode_options(args, transcriber)
    status = 0
    for path in args.files:
        try:
            check_audio_path(path)
            result = transcriber.transcribe(path, opts, timestamps=args.timestamps)
        except AudioError as e:  # this file only: the others are still transcribed
            print(f"error: {e}", file=sys.stderr)  # asr.audio's messages start with the file name
            status = 2
            continue
        if args.json:
            record = asdict(result)
            record.pop("attention")
            print(json.dumps({"file": str(path), **record}))
        else:
            print(result.text if len(args.files) == 1 else f"{path}\t{result.text}")
    return status


def check_audio_path(path: str) -> None:
    """Refuse a directory by name (asr.audio would call it "not found")."""
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")


@contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A text file that replaces `path` only once it is completely written: after a failure or
    Ctrl-C the old `path` (if any) is left as it was. The file is opened before the work starts,
    so an unwritable place is reported at once."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"  # same folder: os.replace is atomic
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = tmp.open("w")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
    try:
        with f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_decode(args: argparse.Namespace) -> int:
    from asr.data import load_manifest
    from asr.transcribe import Transcriber

    utts = load_manifest(args.data)
    transcriber = Transcriber.load(args.model, args.device, args.vtln_warps)
    opts = decode_options(args, transcriber)
    out = args.out
    with atomic_output(out) as f:
        for utt, result in transcriber.decode_manifest(utts, opts, args.batch_size):
            f.write(f"{utt.id} {result.text}\n".replace(" \n", "\n"))
    print(f"wrote {len(utts)} hypotheses to {out}", file=sys.stderr)
    return 0


def cmd_wer(args: argparse.Namespace) -> int:
    from asr.evaluate import (
        Normalizer, ScoringError, TranscriptError, format_report, load_groups, load_transcripts, score, score_groups,
    )

    normalizer = Normalizer(
        lowercase=not args.no_lowercase, remove_punctuation=not args.keep_punctuation, drop_tokens=tuple(args.ignore)
    )
    try:
        refs, hyps = load_transcripts(args.ref), load_transcripts(args.hyp)
        report = score(refs, hyps, normalizer, allow_missing=args.allow_missing)
        groups = score_groups(refs, hyps, load_groups(args.groups), normalizer, args.allow_missing) if args.groups else {}
    except (TranscriptError, ScoringError) as e:
        print(f"asr wer: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        result = report.to_dict()
        if groups:
            result["groups"] = {name: r.summary() for name, r in groups.items()}
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(format_report(report, args.worst, groups))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from server.app import serve

    serve(host=args.host, port=args.port, models=args.model)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Transformer speech recognition: train, transcribe, score, serve.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config (resumes if interrupted)")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--nproc", type=int_in_range(1), default=1, metavar="N",
                   help="data-parallel processes on this machine, one per GPU (NCCL) or CPU processes (gloo), "
                   "started by torchrun's launcher (default: 1, this process)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="a training run's checkpoints (finished or not) averaged into a model directory")
    p.add_argument("exp_dir", help="the run's folder (train.exp_dir)")
    p.add_argument("--steps", type=int_in_range(0), nargs="+", default=[], metavar="N",
                   help="average checkpoints/step-N.pt of these steps (default: checkpoints/last.pt alone)")
    p.add_argument("--out", required=True, help="the model directory to write (replaced atomically)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train-no-speech", help="add a no-speech head to a trained model (only the head learns)")
    p.add_argument("model", help="model directory")
    p.add_argument("--speech", required=True, nargs="+", help="training speech: Kaldi data dirs or JSONL manifests")
    p.add_argument("--out", default=None, help="model directory to write (default: replace MODEL)")
    p.add_argument("--examples", type=int_in_range(1), default=None, help="examples of each class (default: NoSpeechTraining's)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_no_speech)

    p = sub.add_parser("train-lm", help="add a language model for shallow fusion to a trained model (trained on text)")
    p.add_argument("model", help="model directory")
    p.add_argument("--text", required=True, nargs="+",
                   help="training sentences: Kaldi text files ('id sentence' lines), data dirs or JSONL manifests")
    p.add_argument("--dev", required=True, nargs="+", help="held-out sentences (same formats): keeps the best epoch")
    p.add_argument("--out", default=None, help="model directory to write (default: replace MODEL)")
    p.add_argument("--layers", type=int_in_range(1), default=LMTraining.layers, help="LSTM layers")
    p.add_argument("--dim", type=int_in_range(1), default=LMTraining.dim, help="LSTM size")
    p.add_argument("--epochs", type=int_in_range(1), default=LMTraining.epochs)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_lm)

    p = sub.add_parser("transcribe", help="print the transcript of audio files")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per file, with segments and confidence")
    p.add_argument("--timestamps", action="store_true", help="word start/end times (with --json)")
    add_decode_arguments(p)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("decode", help="decode a Kaldi data dir or JSONL manifest into 'utt-id text' lines")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, type=output_file,
                   help="hypotheses file; replaced only once every utterance is decoded")
    p.add_argument("--batch-size", type=int_in_range(1), default=64, help="utterances per batch (default: 64)")
    add_decode_arguments(p)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("wer", help="score hypotheses against references (WER, CER, S/D/I, alignments)")
    p.add_argument("ref", help="reference transcripts: Kaldi text file, Kaldi data dir, or JSONL")
    p.add_argument("hyp", help="hypothesis transcripts, same formats")
    p.add_argument("--json", action="store_true", help="print one JSON object (summary + per utterance)")
    p.add_argument("--worst", type=int_in_range(0), default=10, metavar="N",
                   help="show alignments of the N utterances with the most errors (default 10)")
    p.add_argument("--no-lowercase", action="store_true", help="score case-sensitively")
    p.add_argument("--keep-punctuation", action="store_true", help="do not strip punctuation")
    p.add_argument("--ignore", nargs="+", action="extend", default=[], metavar="TOKEN",
                   help="tokens to drop before scoring, e.g. '<unk>' or fillers (repeatable; put after REF HYP)")
    p.add_argument("--allow-missing", action="store_true",
                   help="score references without a hypothesis as empty hypotheses instead of failing")
    p.add_argument("--groups", metavar="FILE",
                   help="also score each group of utterances: a Kaldi table 'utt-id group', e.g. a data dir's utt2group")
    p.set_defaults(func=cmd_wer)

    p = sub.add_parser("serve", help="run the transcription web service (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int_in_range(0, 65535), default=8000)
    p.add_argument("--model", action="append", default=None, metavar="NAME|DIR",
                   help="a shipped model's name or a model directory; repeat to serve several, the first being the "
                   "default (default: ASR_MODELS, else every shipped model)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)  # a malformed argument: usage and one error line, exit 2
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `asr wer ... | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
