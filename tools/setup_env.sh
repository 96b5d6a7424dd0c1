#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in ./.venv and install everything cfad-mm needs.
#
# Idempotent: a stamp file records a hash of the requirement files; when it matches and the installed
# environment imports, the script returns in seconds. On a fresh machine it takes about 15 minutes,
# most of it compiling mmcv 2.1.0 with its C++ ops (pip caches the built wheel for the next venv).
#
# Usage: bash tools/setup_env.sh [--force]
# Env:   PYTHON (default python3), CFAD_VENV (default <repo>/.venv)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CFAD_VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.cfad_installed"
REQS=("$REPO/requirements/build.txt" "$REPO/requirements/runtime.txt" "$REPO/requirements/tests.txt"
      "$REPO/requirements/optional.txt" "$REPO/setup.cfg" "$REPO/tools/setup_env.sh")
HASH="$(cat "${REQS[@]}" | sha256sum | cut -d' ' -f1)"

log() { echo "[setup_env] $*"; }

check_imports() {
    "$VENV/bin/python" -c "import cfad_mm, mmaction.models, mmdet.models, mmcv.ops, decord, cv2" 2>/dev/null
}

if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] && check_imports; then
    log "environment in $VENV is up to date"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtual environment $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
export PIP_DISABLE_PIP_VERSION_CHECK=1

log "step 1/4: build requirements (torch CPU wheel, numpy, setuptools) -- must precede the mmcv build"
# The CPU torch wheel lies in a local wheel folder on these machines (PIP_FIND_LINKS usually points there too);
# without it pip would fetch a multi-GB CUDA build from PyPI.
FIND_LINKS=()
for d in ${CFAD_WHEEL_DIRS:-/opt/wheels}; do [[ -d "$d" ]] && FIND_LINKS+=(--find-links "$d"); done
"${PIP[@]}" install "${FIND_LINKS[@]}" -r "$REPO/requirements/build.txt"

if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops" 2>/dev/null; then
    log "step 2/4: compiling mmcv 2.1.0 with ops (about 11 minutes on 2 cores the first time)"
    # Without torch present or with build isolation the build silently yields mmcv WITHOUT ops.
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
        "${PIP[@]}" install --no-build-isolation "mmcv==2.1.0" \
            -c "$REPO/requirements/build.txt" -c "$REPO/requirements/runtime.txt"
    if ! "$VENV/bin/python" -c "import mmcv.ops" ; then
        log "ERROR: mmcv was installed without its compiled ops (mmcv._ext). A cached wheel built without"
        log "       torch may be the cause: run 'pip cache remove mmcv' and 'bash tools/setup_env.sh --force'."
        exit 1
    fi
else
    log "step 2/4: mmcv with ops already present"
fi

log "step 3/4: runtime, test and optional requirements"
"${PIP[@]}" install -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt" \
    -r "$REPO/requirements/optional.txt" -c "$REPO/requirements/build.txt"

log "step 4/4: cfad_mm in editable mode"
"${PIP[@]}" install --no-build-isolation --no-deps -e "$REPO"

if ! check_imports; then
    log "ERROR: the environment does not import; run this to see why:"
    log "  $VENV/bin/python -c 'import cfad_mm, mmaction.models, mmdet.models, mmcv.ops'"
    exit 1
fi
echo "$HASH" > "$STAMP"
log "done: $VENV"
