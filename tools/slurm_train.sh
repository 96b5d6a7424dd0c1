#!/usr/bin/env bash
# Training on a Slurm cluster (as MMAction2's tools/slurm_train.sh): one task per GPU, `--launcher slurm`.
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#        bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Example: GPUS=16 bash tools/slurm_train.sh dev cfad_ucf configs/cfad/cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24.py \
#          work_dirs/cfad_ucf --amp
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,6p' "$0" >&2
    exit 2
fi
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

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
    python -u "$DIR/train.py" "${CONFIG}" --work-dir="${WORK_DIR}" --launcher="slurm" "${@:5}"
