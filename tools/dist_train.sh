#!/usr/bin/env bash
# Distributed training with torchrun: gloo on CPU, nccl on CUDA (chosen by cfad_mm.compat.setup_distributed).
# Usage: [NNODES=1] [NODE_RANK=0] [PORT=29500] [MASTER_ADDR=127.0.0.1] \
#        bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
# The torchrun command line is built by tools/dist_run.sh (shared with tools/dist_test.sh).
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_run.sh" train "$@"
