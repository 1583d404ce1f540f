#!/usr/bin/env bash
# Train a recipe's model with `asr train`, timed: the recipes' training stages all run this.
#
#   local/train_model.sh ASR EXP CONFIG [asr train options ...]
#
# Skipped when EXP/model exists (delete it to train again). Otherwise trains into EXP
# (train.exp_dir; a killed run resumes from EXP/checkpoints/last.pt) and writes the wall time
# to EXP/train_time.txt.
set -euo pipefail
asr=$1 exp=$2 config=$3
shift 3
if [ -f "$exp/model/model.safetensors" ]; then
  echo "$exp/model exists: skipping training (delete it to train again)"
  exit 0
fi
start=$(date +%s)
"$asr" train "$config" --set "train.exp_dir=$exp" "$@"
echo "training wall time: $(( $(date +%s) - start )) s" | tee "$exp/train_time.txt"
