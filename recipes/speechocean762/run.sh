#!/usr/bin/env bash
# Open-vocabulary English on speechocean762 (non-native read speech, children and adults):
# data -> train -> decode -> score.
#
#   ./run.sh                               # everything; the corpus from ../../../shared/data/speechocean762
#   ./run.sh --local /path/to/copy         # a local copy (a folder with manifest.jsonl and the audio it names,
#                                          # or the corpus as its archive unpacks: WAVE/, train/, test/)
#   ./run.sh --sha256 HEX                  # no copy: download OpenSLR 101 into downloads/, checked against HEX
#   ./run.sh --stage 1 --stop-stage 1      # only training (resumes from the last checkpoint if interrupted)
#   ./run.sh --stage 1 --tag noguided --set loss.guided_weight=0   # an ablation in exp/noguided
#   ./run.sh --synth 1000                  # + 1000 synthetic utterances per TTS engine, in exp/transformer_synth1000
#
# Stages (each skips work already done):
#   0 data     the corpus: --local, else ../../../shared's copy, else downloaded (local/download.py)
#              speaker-disjoint sets from it              -> data/{train,dev,test}
#              with --synth N: espeak-ng and flite read N sentences each (--synth-text FILE, default
#              the LJ Speech sentences in ../../../shared) -> data/train_synth_{espeak,flite}, and
#              data/train + those -> data/train_all, which stage 1 then trains on
#   1 train    asr train conf/train.yaml                  -> exp/TAG/model
#   2 decode   beam search (+CTC), greedy, CTC greedy     -> exp/TAG/decode_SET_NAME/hyp
#   3 score    asr wer, by age group too                  -> exp/TAG/decode_SET_NAME/wer.{txt,json}
# data/dev chooses (checkpoints, settings); data/test is decoded only with --test-set, once a choice is made.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=3
local_copy=""
download=()
config=conf/train.yaml
tag=""
synth=0
synth_text=()
beam=5
sets="dev"
overrides=()

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --local) local_copy=$2; shift 2 ;;
    --sha256|--mirror) download+=("$1" "$2"); shift 2 ;;
    --config) config=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --beam) beam=$2; shift 2 ;;
    --test-set) sets="dev test"; shift ;;
    --synth) synth=$2; shift 2 ;;
    --synth-text) synth_text+=(--text "$2"); shift 2 ;;
    --set) overrides+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "$(basename "$0")"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$synth" =~ ^[0-9]+$ ]]; then echo "--synth takes a number of utterances, got '$synth'" >&2; exit 2; fi
if [ "$synth" -gt 0 ]; then
  tag=${tag:-transformer_synth$synth}
  # First, so that a --set train.train_data=... of the caller's own still wins.
  overrides=(--set train.train_data=data/train_all ${overrides[@]+"${overrides[@]}"})
fi
tag=${tag:-transformer}

. local/common.sh ../..  # bin, python, asr; run N, log
exp=exp/$tag

if run 0; then
  log "0: data"
  if [ -z "$local_copy" ] && [ -f ../../../shared/data/speechocean762/manifest.jsonl ]; then
    local_copy=../../../shared/data/speechocean762
  fi
  if [ -z "$local_copy" ]; then
    local_copy=$("$python" local/download.py ${download[@]+"${download[@]}"})
  fi
  "$python" local/prepare.py --data data --local "$local_copy"
  if [ "$synth" -gt 0 ]; then
    for engine in espeak-ng flite; do
      "$python" local/synth_sentences.py --data data --engine "$engine" --num-utts "$synth" \
        ${synth_text[@]+"${synth_text[@]}"}
    done
    "$python" local/combine.py data/train_all data/train data/train_synth_espeak data/train_synth_flite
  fi
fi

if run 1; then
  log "1: train ($exp)"
  local/train_model.sh "$asr" "$exp" "$config" ${overrides[@]+"${overrides[@]}"}
fi

# "method name options": each decode of SET goes to exp/TAG/decode_SET_NAME.
decodes=(
  "beam beam${beam}_ctc --beam-size $beam"
  "beam beam${beam} --beam-size $beam --ctc-weight 0"
  "greedy greedy"
  "ctc_greedy ctc_greedy"
)

if run 2; then
  log "2: decode"
  for set in $sets; do
    for d in "${decodes[@]}"; do
      read -r method name extra <<<"$d"
      out=$exp/decode_${set}_${name}
      local/decode_set.sh "$asr" "data/$set" "$out" "$set $name" --model "$exp/model" --decoder "$method" $extra
    done
  done
fi

if run 3; then
  log "3: score"
  for set in $sets; do
    for d in "${decodes[@]}"; do
      read -r method name extra <<<"$d"
      out=$exp/decode_${set}_${name}
      if [ ! -f "$out/hyp" ]; then continue; fi
      "$asr" wer "data/$set/text" "$out/hyp" --groups "data/$set/utt2group" --worst 20 > "$out/wer.txt"
      "$asr" wer "data/$set/text" "$out/hyp" --groups "data/$set/utt2group" --json > "$out/wer.json"
      echo "== $set $name"
      sed -n '1,2p;/^Runaways/p;/^By group/,/^$/p' "$out/wer.txt"
    done
  done
fi
