#!/usr/bin/env bash
# LibriSpeech recipe (OpenSLR 12): download -> Kaldi data dirs -> train (1 GPU, N GPUs) -> decode -> score.
#
#   ./run.sh                                           # 100 h (train-clean-100), 1 GPU, conf/train_100h_1gpu.yaml
#   ./run.sh --local /corpora/LibriSpeech              # an unpacked copy instead of downloading
#   ./run.sh --parts "train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other" \
#            --config conf/train_960h_8gpu.yaml --nproc 8       # 960 h on the 8 GPUs of this machine
#   ./run.sh --stage 3 --stop-stage 3                  # only training (resumes from the last checkpoint)
#   ./run.sh --workdir /big/disk/librispeech           # data/, downloads/ and exp/ there, not in this folder
#   (several machines: README.md, "Launching")
#
# Stages (each skips work already done):
#   0 download  fetch + verify + unpack the parts, or find them (--local) -> data/librispeech_path
#   1 data      each part as a Kaldi data dir                            -> data/{train_clean_100,dev_clean,...}
#   2 combine   dev-clean + dev-other (chooses checkpoints)              -> data/dev
#               the three training parts, when all three are prepared     -> data/train_960
#   3 train     asr train CONFIG --nproc N                               -> exp/TAG/model
#   4 decode    beam search + CTC on each test set                       -> exp/TAG/decode_SET_beamB/hyp
#   5 score     asr wer --json, then a table of every decode             -> exp/TAG/decode_*/wer.json, exp/TAG/RESULTS.md
set -euo pipefail

recipe=$(cd "$(dirname "$0")" && pwd)
stage=0
stop_stage=5
parts="train-clean-100 dev-clean dev-other test-clean test-other"
local_copy=""
mirror=""
remove_archives=""
workdir=$recipe
config=$recipe/conf/train_100h_1gpu.yaml
tag=""
nproc=1
beam=10
decode_device=auto
test_sets="dev_clean dev_other test_clean test_other"
overrides=()

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --parts) parts=$2; shift 2 ;;
    --local) local_copy=$(cd "$2" && pwd); shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --remove-archives) remove_archives=--remove-archives; shift ;;
    --workdir) mkdir -p "$2"; workdir=$(cd "$2" && pwd); shift 2 ;;
    --config) config=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --nproc) nproc=$2; shift 2 ;;
    --beam) beam=$2; shift 2 ;;
    --decode-device) decode_device=$2; shift 2 ;;
    --test-sets) test_sets=$2; shift 2 ;;
    --set) overrides+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

. "$recipe/local/common.sh" "$recipe/../.."  # bin, python, asr; run N, log
tag=${tag:-$(basename "$config" .yaml)}
exp=exp/$tag
cd "$workdir"

if run 0; then
  log "0: download ($parts)"
  if [ -n "$local_copy" ]; then
    "$python" "$recipe/local/download.py" --data data --parts $parts --local "$local_copy"
  else
    "$python" "$recipe/local/download.py" --data data --parts $parts ${mirror:+--mirror "$mirror"} $remove_archives
  fi
fi

if run 1; then
  log "1: data dirs"
  "$python" "$recipe/local/prepare.py" --data data --parts $parts
fi

if run 2; then
  log "2: combine"
  "$python" "$recipe/local/combine.py" --allow-missing data/dev data/dev_clean data/dev_other
  if [ -d data/train_clean_100 ] && [ -d data/train_clean_360 ] && [ -d data/train_other_500 ]; then
    "$python" "$recipe/local/combine.py" data/train_960 data/train_clean_100 data/train_clean_360 data/train_other_500
  else
    echo "data/train_960: not all of train-clean-100, train-clean-360, train-other-500 are prepared; not made"
  fi
fi

if run 3; then
  log "3: train ($exp, $nproc processes)"
  "$recipe/local/train_model.sh" "$asr" "$exp" "$config" --nproc "$nproc" ${overrides[@]+"${overrides[@]}"}
fi

if run 4; then
  log "4: decode"
  for set in $test_sets; do
    out=$exp/decode_${set}_beam$beam
    if [ ! -d "data/$set" ]; then echo "data/$set missing: skipping"; continue; fi
    "$recipe/local/decode_set.sh" "$asr" "data/$set" "$out" "$set beam$beam" --model "$exp/model" --decoder beam \
      --beam-size "$beam" --device "$decode_device"
  done
fi

if run 5; then
  log "5: score"
  for set in $test_sets; do
    out=$exp/decode_${set}_beam$beam
    if [ ! -f "$out/hyp" ]; then continue; fi
    "$asr" wer "data/$set/text" "$out/hyp" --json > "$out/wer.json"  # `asr wer REF HYP --worst 20`: the worst, aligned
  done
  "$python" "$recipe/local/results.py" "$exp"
fi
