#!/usr/bin/env bash
# The body shared by tools/dist_train.sh and tools/dist_test.sh (run those, not this one): torchrun with
# `--launcher pytorch`; gloo on CPU, nccl on CUDA (chosen by cfad_mm.compat.setup_distributed).
# Usage: [NNODES=1] [NODE_RANK=0] [PORT=29500] [MASTER_ADDR=127.0.0.1] \
#        bash tools/dist_run.sh train CONFIG NUM_PROCS [train.py args...]
#        bash tools/dist_run.sh test CONFIG CHECKPOINT NUM_PROCS [test.py args...]
set -euo pipefail
MODE=$1
shift
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "$MODE" in
    train) ENTRY=("$DIR/train.py" "$1"); GPUS=$2; shift 2 ;;  # CONFIG NUM_PROCS
    test) ENTRY=("$DIR/test.py" "$1" "$2"); GPUS=$3; shift 3 ;;  # CONFIG CHECKPOINT NUM_PROCS
    *) echo "dist_run.sh: the mode must be train or test, got '$MODE'" >&2; exit 2 ;;
esac
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" \
python -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" "${ENTRY[@]}" --launcher pytorch "$@"
