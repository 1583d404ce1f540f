#!/usr/bin/env bash
# Connected-digit recipe (FSDD + espeak-ng and flite voices): data -> train -> decode -> score.
#
#   ./run.sh                              # everything; FSDD from ../../../shared/data/fsdd if present, else downloaded
#   ./run.sh --fsdd /path/to/fsdd         # use a local FSDD copy (no network needed)
#   ./run.sh --so762 /path/to/copy        # speechocean762's digit strings (default: ../../../shared/data/speechocean762 if present)
#   ./run.sh --stage 4 --stop-stage 4     # only training (resumes from the last checkpoint if interrupted)
#   ./run.sh --stage 4 --tag noguided --set loss.guided_weight=0   # an ablation in exp/noguided
#   ./run.sh --no-speech-extra ../../../shared/data/speechocean762/manifest.jsonl  # more voices for the no-speech head
#   ./run.sh --stage 5 --stop-stage 5 --tag TAG --no-speech-seed 1   # another draw of the head's examples
#
# Stages (each skips work already done):
#   0 download   find or fetch FSDD                      -> data/fsdd_path
#   1 connected  connected-digit utterances from FSDD    -> data/{train,valid,dev,dev_single}
#                speechocean762 digit strings (children)  -> data/{train,dev}_so762, train_so762_x40 (with a local copy)
#                non-speech with empty transcripts        -> data/train_nonspeech
#   2 synth      espeak-ng and flite voices for training -> data/train_{espeak,flite}
#   3 combine    all training sets of stages 1-2         -> data/train_all (+ train_kids40: children x40)
#   4 train      asr train conf/train.yaml               -> exp/TAG/model
#   5 no-speech  P(no speech) head on the frozen encoder  -> exp/TAG/model (+ head), exp/TAG/no_speech.json
#   6 decode     beam search and greedy on dev sets      -> exp/TAG/decode_*/hyp
#   7 score      asr wer                                 -> exp/TAG/decode_*/wer.{txt,json}
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=7
fsdd=""
so762=""
config=conf/train.yaml
tag=transformer_guided
num_espeak=2000
num_flite=1500
beam=5
no_speech_extra=""
no_speech_seed=0
overrides=()

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --fsdd) fsdd=$2; shift 2 ;;
    --so762) so762=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --num-espeak) num_espeak=$2; shift 2 ;;
    --num-flite) num_flite=$2; shift 2 ;;
    --beam) beam=$2; shift 2 ;;
    --no-speech-extra) no_speech_extra=$2; shift 2 ;;
    --no-speech-seed) no_speech_seed=$2; shift 2 ;;
    --set) overrides+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

. local/common.sh ../..  # bin, python, asr; run N, log
exp=exp/$tag

if run 0; then
  log "0: download"
  if [ -z "$fsdd" ] && [ -d ../../../shared/data/fsdd/recordings ]; then fsdd=../../../shared/data/fsdd; fi
  if [ -n "$fsdd" ]; then
    "$python" local/download.py --data data --local "$fsdd"
  else
    "$python" local/download.py --data data
  fi
fi

if run 1; then
  log "1: connected digits"
  "$python" local/make_connected.py --data data
  "$python" local/nonspeech.py --data data
  if [ -z "$so762" ] && [ -f ../../../shared/data/speechocean762/manifest.jsonl ]; then
    so762=../../../shared/data/speechocean762
  fi
  if [ -n "$so762" ]; then
    "$python" local/speechocean.py --data data --local "$so762"
    "$python" local/speechocean.py --data data --local "$so762" --repeat 40 --train-set train_so762_x40
  else
    echo "no speechocean762 copy (--so762 DIR): training without its voices, no dev_so762"
  fi
fi

# The training sets of stages 1-2; speechocean762's only where its copy was found.
fsdd_and_synth=(data/train data/train_espeak data/train_flite)
speech_sets=("${fsdd_and_synth[@]}")
if [ -d data/train_so762 ]; then speech_sets+=(data/train_so762); fi

if run 2; then
  log "2: synthetic voices"
  "$python" local/synth.py --data data --engine espeak-ng --num-utts "$num_espeak"
  "$python" local/synth.py --data data --engine flite --num-utts "$num_flite"
fi

if run 3; then
  log "3: combine"
  "$python" local/combine.py data/train_all "${speech_sets[@]}" data/train_nonspeech
  if [ -d data/train_so762_x40 ]; then  # the third run (RESULTS.md): the children's digit strings x40, not x10
    "$python" local/combine.py data/train_kids40 "${fsdd_and_synth[@]}" data/train_so762_x40 data/train_nonspeech
  fi
fi

if run 4; then
  log "4: train ($exp)"
  local/train_model.sh "$asr" "$exp" "$config" ${overrides[@]+"${overrides[@]}"}
fi

# "set method name options": each decode goes to exp/TAG/decode_SET_NAME.
# beamN_joint: beam search with the model's joint CTC weight (inference.ctc_weight) and test-time VTLN
# warps (inference.vtln_warps), the default search; _novtln and the other searches: one decode at warp 1.
decodes=(
  "dev beam beam${beam}_joint --beam-size $beam"
  "dev beam beam${beam}_joint_novtln --beam-size $beam --vtln-warps 1"
  "dev beam beam$beam --beam-size $beam --ctc-weight 0 --vtln-warps 1"
  "dev greedy greedy --vtln-warps 1"
  "dev ctc_greedy ctc_greedy --vtln-warps 1"
  "dev_single beam beam${beam}_joint --beam-size $beam"
  "dev_so762 beam beam${beam}_joint --beam-size $beam"
  "dev_so762 beam beam${beam}_joint_novtln --beam-size $beam --vtln-warps 1"
  "valid beam beam${beam}_joint --beam-size $beam"
)

if run 5; then
  log "5: no-speech head ($exp)"
  if [ -f "$exp/no_speech.json" ]; then
    echo "$exp/no_speech.json exists: skipping (delete it to train the head again)"
  else
    "$asr" train-no-speech "$exp/model" --speech "${speech_sets[@]}" $no_speech_extra --seed "$no_speech_seed" \
      | tee "$exp/no_speech.json.tmp"
    mv "$exp/no_speech.json.tmp" "$exp/no_speech.json"
  fi
fi

if run 6; then
  log "6: decode"
  for d in "${decodes[@]}"; do
    read -r set method name extra <<<"$d"
    out=$exp/decode_${set}_${name}
    if [ ! -d "data/$set" ]; then echo "data/$set missing: skipping"; continue; fi
    local/decode_set.sh "$asr" "data/$set" "$out" "$set $name" --model "$exp/model" --decoder "$method" $extra
  done
fi

if run 7; then
  log "7: score"
  for d in "${decodes[@]}"; do
    read -r set method name extra <<<"$d"
    out=$exp/decode_${set}_${name}
    if [ ! -f "$out/hyp" ]; then continue; fi
    "$asr" wer "data/$set/text" "$out/hyp" --worst 20 > "$out/wer.txt"
    "$asr" wer "data/$set/text" "$out/hyp" --json > "$out/wer.json"
    echo "== $set $name"
    head -3 "$out/wer.txt"
  done
fi
