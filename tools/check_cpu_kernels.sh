#!/usr/bin/env bash
# Run the model tests (tests/test_models) and every learning test (pytest marker `learning`) under each family of CPU kernels that
# torch can pick, several times each, and fail if any run fails.
#
# torch chooses its vectorised kernels by the CPU (AVX-512 on some machines, AVX2 on others); float results, and so
# the outcome of a short training, differ between them. ATEN_CPU_CAPABILITY=default selects the scalar kernels
# that every x86-64 machine has, so a threshold that holds under default, avx2 and the machine's own kernels holds
# on any machine torch supports.
#
# Usage: bash tools/check_cpu_kernels.sh [REPEATS]        (default 3; run by .ci/run)
# Env:   PYTHON (default .venv/bin/python), CFAD_KERNELS (default "default avx2 native")
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPEATS="${1:-3}"
PY="${PYTHON:-.venv/bin/python}"
KERNELS=(${CFAD_KERNELS:-default avx2 native})
declare -a SUMMARY
failed=0
# torch does not check that the CPU has the instructions of a forced capability: skip avx2 where it lacks them
if [[ -r /proc/cpuinfo ]] && ! { grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; }; then
    echo "[check_cpu_kernels] this CPU has no AVX2/FMA: skipping kernels=avx2"
    KERNELS=("${KERNELS[@]/avx2/}")
fi
for kernel in "${KERNELS[@]}"; do
    [[ -z "$kernel" ]] && continue
    for ((run = 1; run <= REPEATS; run++)); do
        if [[ "$kernel" == native ]]; then
            env_cmd=(env -u ATEN_CPU_CAPABILITY)
        else
            env_cmd=(env ATEN_CPU_CAPABILITY="$kernel")
        fi
        used="$("${env_cmd[@]}" "$PY" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')"
        echo "[check_cpu_kernels] kernels=$kernel (torch uses $used), run $run/$REPEATS"
        start=$(date +%s)
        # `model`: every test under tests/test_models (tests/conftest.py adds the marker)
        out="$("${env_cmd[@]}" "$PY" -m pytest -q -p no:cacheprovider tests -m "model or learning" 2>&1)"
        status=$?
        line="$(echo "$out" | grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' | tail -1)"
        SUMMARY+=("kernels=$kernel ($used) run $run: ${line:-no summary} ($(( $(date +%s) - start )) s)")
        if [[ $status -ne 0 ]]; then
            failed=1
            echo "$out" | tail -40
        fi
    done
done
echo "[check_cpu_kernels] summary:"
printf '  %s\n' "${SUMMARY[@]}"
if [[ $failed -ne 0 ]]; then
    echo "[check_cpu_kernels] FAILED under at least one kernel family"
    exit 1
fi
echo "[check_cpu_kernels] all runs passed"
