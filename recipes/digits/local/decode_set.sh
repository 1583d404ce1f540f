#!/usr/bin/env bash
# Decode one data set with `asr decode`, timed: the recipes' decoding stages all run this.
#
#   local/decode_set.sh ASR DATA OUT NAME [asr decode options ...]
#
# ASR is the asr command, DATA a Kaldi data dir (with utt2dur), OUT the decode folder, NAME the
# label of its speed line. Writes OUT/hyp (renamed into place only once every utterance is decoded)
# and OUT/speed.txt: wall time and RTF, model loading included. A set whose OUT/hyp exists is skipped.
set -euo pipefail
asr=$1 data=$2 out=$3 name=$4
shift 4
if [ -f "$out/hyp" ]; then echo "$out/hyp exists: skipping"; exit 0; fi
mkdir -p "$out"
start=$(date +%s.%N)
"$asr" decode --data "$data" --out "$out/hyp.tmp" "$@"
end=$(date +%s.%N)
audio=$(awk '{s += $2} END {print s}' "$data/utt2dur")
awk -v s="$start" -v e="$end" -v a="$audio" -v n="$name" \
  'BEGIN {printf "%s: %.1f s for %.1f s of audio, RTF %.4f (includes model loading)\n", n, e - s, a, (e - s) / a}' \
  | tee "$out/speed.txt"
mv "$out/hyp.tmp" "$out/hyp"
