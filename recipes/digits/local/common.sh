# Sourced by the recipes' run.sh after their options are parsed:  . local/common.sh REPO_ROOT
# Sets bin (REPO_ROOT/.venv/bin when the project is installed there, else the folder of the
# python3 on PATH), python and asr, and defines the stage helpers:
#   run N    true when stage N lies in [stage, stop_stage]
#   log ...  a time-stamped "stage ..." line
if [ -x "$1/.venv/bin/asr" ]; then
  bin=$(cd "$1/.venv/bin" && pwd)
else
  bin="$(dirname "$(command -v python3)")"
fi
python="$bin/python"
asr="$bin/asr"

run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
log() { echo "$(date '+%H:%M:%S') stage $*"; }
