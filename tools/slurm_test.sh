#!/usr/bin/env bash
# Testing on a Slurm cluster (as MMAction2's tools/slurm_test.sh): one task per GPU, `--launcher slurm`.
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#        bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# Example: GPUS=8 bash tools/slurm_test.sh dev cfad_test configs/cfad/cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24.py \
#          work_dirs/cfad_ucf/best.pth --work-dir work_dirs/cfad_ucf_test
# The srun command line is built by tools/slurm_run.sh (shared with tools/slurm_train.sh).
exec bash "$(dirname "${BASH_SOURCE[0]}")/slurm_run.sh" "$0" test "$@"
