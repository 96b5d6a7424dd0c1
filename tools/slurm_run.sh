#!/usr/bin/env bash
# The body shared by tools/slurm_train.sh and tools/slurm_test.sh (run those, not this one): srun with one task
# per GPU, `--launcher slurm`.
# Usage: bash tools/slurm_run.sh CALLER train|test PARTITION JOB_NAME CONFIG WORK_DIR|CHECKPOINT [args...]
# CALLER is the calling script: its lines 2-6 are printed as the usage when arguments are missing.
set -euo pipefail
CALLER=$1
MODE=$2
shift 2
if [ $# -lt 4 ]; then
    sed -n '2,6p' "$CALLER" >&2
    exit 2
fi
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "$MODE" in
    train) ENTRY=("$DIR/train.py" "$CONFIG" --work-dir="$4") ;;  # $4 = WORK_DIR
    test) ENTRY=("$DIR/test.py" "$CONFIG" "$4") ;;  # $4 = CHECKPOINT
    *) echo "slurm_run.sh: the mode must be train or test, got '$MODE'" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086  # SRUN_ARGS holds several srun options
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u "${ENTRY[@]}" --launcher="slurm" "${@:5}"
