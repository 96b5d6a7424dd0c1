#!/usr/bin/env bash
# Distributed testing with torchrun: gloo on CPU, nccl on CUDA.
# Usage: [NNODES=1] [NODE_RANK=0] [PORT=29500] [MASTER_ADDR=127.0.0.1] \
#        bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]
# The torchrun command line is built by tools/dist_run.sh (shared with tools/dist_train.sh).
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_run.sh" test "$@"
