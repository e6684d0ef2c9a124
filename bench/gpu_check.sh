#!/usr/bin/env bash
# The CUDA checks of the speed work, in one go and in under 8 minutes, on a machine with a GPU:
# the GPU's name, the tests marked `cuda` (tests/test_cuda.py: the P1 parity replay in fp32,
# the fast mode's fp16 autocast against fp32, the GUI worker offscreen), then the benchmarks
# with --device cuda. It installs nothing. Each step runs under `timeout`; the logs go to
# "$OUT" when that variable is set (and always to a temporary folder, printed at the end).
#
#   bench/gpu_check.sh             run the checks (without CUDA: the cuda tests skip, saying so,
#                                  no benchmark runs, and the script exits 0)
#   bench/gpu_check.sh --prepare   here, before sending the tree to a GPU machine: copies what
#                                  the tests need from ../shared (synthetic-weight tool, schemas,
#                                  parity/P1.npz; 17 MB) into .gpu_shared/, which git ignores
#                                  (.gitignore); carry ".gpu_shared" with the run
#
# ../shared (or $MIVOS_SHARED) holds the parity vectors and the synthetic-weight tool; where it
# is absent and .gpu_shared/ is there, that is used; where neither is, the parity and fp16 tests
# skip with a reason. The GUI test needs PyQt5, pytest-qt, PyAV and pycocotools, the replay
# platformdirs: the script lists the modules that are missing, and those tests skip or fail.
# Exit status: 0 when every step that ran passed (or there is no CUDA), 1 otherwise.
set -u

cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}
TOTAL_S=470  # the whole script, well inside 8 minutes

if [ "${1:-}" = "--prepare" ]; then
    src=${MIVOS_SHARED:-../shared}
    [ -f "$src/tools/synth_weights.py" ] || { echo "no shared folder at $src"; exit 1; }
    [ -d .gpu_shared ] && chmod -R u+w .gpu_shared  # copies of read-only files
    rm -rf .gpu_shared && mkdir -p .gpu_shared/parity .gpu_shared/checkpoints
    cp -r "$src/tools" .gpu_shared/ && cp -r "$src/checkpoints/schema" .gpu_shared/checkpoints/
    cp "$src/parity/P1.npz" "$src/parity/README.md" .gpu_shared/parity/
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx '/.gpu_shared/' "$exclude" 2>/dev/null || echo '/.gpu_shared/' >>"$exclude"
    du -sh .gpu_shared
    echo "prepared: carry [\".gpu_shared\"] and run: bash bench/gpu_check.sh"
    exit 0
fi

if [ -z "${MIVOS_SHARED:-}" ] && [ ! -d ../shared ] && [ -d .gpu_shared ]; then
    export MIVOS_SHARED=$PWD/.gpu_shared
fi
export QT_QPA_PLATFORM=offscreen PYTHONUNBUFFERED=1
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
SUMMARY=$LOGS/summary.txt
status=0

save_logs() {
    if [ -n "${OUT:-}" ]; then
        mkdir -p "$OUT" && cp "$LOGS"/*.log "$SUMMARY" "$OUT"/ 2>/dev/null
    fi
}

note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME BUDGET_S COMMAND...: run under timeout (never past the script's total), log it.
step() {
    local name=$1 budget=$2 left rc
    shift 2
    left=$((TOTAL_S - SECONDS - 5))
    [ "$budget" -gt "$left" ] && budget=$left
    if [ "$budget" -le 10 ]; then
        note "SKIPPED $name: no time left in the ${TOTAL_S} s budget"
        status=1
        return
    fi
    echo "==== $name (at most ${budget} s): $*"
    local start=$SECONDS
    timeout -k 10 "$budget" "$@" 2>&1 | tee "$LOGS/$name.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        note "TIMED OUT $name after ${budget} s"
        status=1
    elif [ "$rc" -ne 0 ]; then
        note "FAILED $name (exit $rc, $((SECONDS - start)) s)"
        status=1
    else
        note "ok $name ($((SECONDS - start)) s)"
    fi
    save_logs
}

{
    echo "==== environment"
    date -u
    git log -1 --oneline 2>/dev/null
    if command -v nvidia-smi >/dev/null; then
        timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    else
        echo "nvidia-smi: not found"
    fi
    timeout 120 "$PY" - <<'EOF'
import importlib.util, os, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| CUDA build",
      torch.version.cuda, "| cuDNN", torch.backends.cudnn.version())
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0), "| capability", torch.cuda.get_device_capability(0),
          "| cudnn.allow_tf32", torch.backends.cudnn.allow_tf32,
          "| matmul.allow_tf32", torch.backends.cuda.matmul.allow_tf32)
else:
    print("GPU: none (torch.cuda.is_available() is False)")
need = {"pytest": "all", "platformdirs": "the parity replay", "PyQt5": "the GUI test",
        "pytestqt": "the GUI test", "av": "the GUI test", "pycocotools": "the GUI test"}
missing = [f"{m} ({why})" for m, why in need.items() if importlib.util.find_spec(m) is None]
print("missing modules:", ", ".join(missing) or "none")
shared = os.environ.get("MIVOS_SHARED", "../shared")
print("shared folder:", shared, "(present)" if os.path.isdir(shared) else "(ABSENT: parity and fp16 tests skip)")
EOF
} 2>&1 | tee "$LOGS/environment.log"
save_logs

if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    cuda=1
else
    cuda=0
    note "no CUDA device here: the cuda tests skip and no benchmark runs"
fi

# Only the files that hold cuda tests are collected: the others import modules (PyQt5) a GPU
# machine may lack, and a collection error would stop the run.
mapfile -t cuda_files < <(grep -lE "mark\.cuda|cuda_test" tests/test_*.py)
[ "${#cuda_files[@]}" -gt 0 ] || cuda_files=(tests/test_cuda.py)
step pytest_cuda 300 "$PY" -m pytest -m cuda -rs -v -p no:cacheprovider "${cuda_files[@]}"
if [ "$cuda" -eq 0 ]; then
    save_logs
    echo "logs: $LOGS"
    exit 0
fi

for bench in "bench_speed:90" "bench_click:60"; do
    name=${bench%%:*} budget=${bench##*:}
    if [ -f "bench/$name.py" ]; then
        step "$name" "$budget" "$PY" "bench/$name.py" --device cuda
    else
        note "MISSING bench/$name.py: not run (it is part of the speed work; add it, then rerun)"
        status=1
    fi
done

note "total $SECONDS s"
save_logs
echo "logs: $LOGS"
exit $status
