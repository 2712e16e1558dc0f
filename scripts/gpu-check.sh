#!/usr/bin/env bash
# GPU check of a CUDA build of varsr made elsewhere (scripts/build-cuda.sh), on a machine with an NVIDIA GPU:
# driver and device, the CUDA libraries the binary needs, the parity fixtures at f32/f16/bf16, and the
# benchmark of the released-size model (random weights) at 512x512 and tiled 2048x2048 at each precision.
#
#   scripts/gpu-check.sh [BINARY]        default: target/cuda/release/varsr (a .xz or .zst is unpacked first)
#
# Environment:
#   VARSR_CUDA_LIBS   extra folders (colon-separated) to search for libcublas/libcublasLt/libcurand/libnvrtc
#   DTYPES            precisions to check (default "f32 f16 bf16")
#   BENCH_512_ARGS    bench arguments for the 512x512 run   (default "--size 512")
#   BENCH_2048_ARGS   bench arguments for the tiled run     (default "--size 2048 --tile 512")
#   SKIP_BENCH=1      parity only
#
# Every step runs even when an earlier one fails; the summary at the end says which passed, and the exit
# status is non-zero if any failed.
set -uo pipefail
# A binary named on the command line is relative to where the script was started.
if [[ $# -gt 0 ]]; then bin=$(realpath -- "$1"); fi
cd "$(dirname "$0")/.." || exit 2
bin="${bin:-$PWD/target/cuda/release/varsr}"
read -r -a dtypes <<<"${DTYPES:-f32 f16 bf16}"
read -r -a bench_512 <<<"${BENCH_512_ARGS:---size 512}"
read -r -a bench_2048 <<<"${BENCH_2048_ARGS:---size 2048 --tile 512}"
fixtures=tests/fixtures/parity

results=()
failed=0
record() { # name, status
    results+=("$(printf '%-40s %s' "$1" "$2")")
    [[ "$2" == ok* ]] || failed=1
}
section() { printf '\n==== %s\n' "$1"; }

# --- the binary ------------------------------------------------------------------------------------------
case "$bin" in
    *.xz | *.zst)
        unpack_dir=$(mktemp -d)
        trap 'rm -rf "$unpack_dir"' EXIT
        unpacked="$unpack_dir/varsr"
        if [[ "$bin" == *.xz ]]; then xz -dc "$bin" >"$unpacked"; else zstd -dc "$bin" >"$unpacked"; fi
        chmod +x "$unpacked"
        bin=$unpacked
        ;;
esac
if [[ ! -x "$bin" ]]; then
    echo "gpu-check.sh: no executable at $bin (build it with scripts/build-cuda.sh)" >&2
    exit 2
fi
echo "binary: $bin ($(du -h "$bin" | cut -f1))"

# --- driver and device -------------------------------------------------------------------------------------
section "nvidia-smi"
if ! command -v nvidia-smi >/dev/null; then
    echo "gpu-check.sh: nvidia-smi not found: no NVIDIA driver on this machine" >&2
    exit 2
fi
nvidia-smi
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
# candle's kernels ship as PTX from nvcc 13.4, which the driver JIT-compiles: an older driver refuses them.
driver_cuda=$(nvidia-smi | grep -oE 'CUDA Version: *[0-9]+\.[0-9]+' | grep -oE '[0-9]+\.[0-9]+' || true)
if [[ -n "$driver_cuda" ]]; then
    if [[ "$(printf '%s\n13.4\n' "$driver_cuda" | sort -V | head -n 1)" != "13.4" ]]; then
        echo "WARNING: the driver supports CUDA $driver_cuda, older than the 13.4 that compiled the kernels"
        record "driver >= CUDA 13.4" "FAILED ($driver_cuda)"
    else
        record "driver >= CUDA 13.4" "ok ($driver_cuda)"
    fi
fi

# --- CUDA libraries ------------------------------------------------------------------------------------------
# The binary links libcuda.so.1 (the driver) and cuBLAS/cuBLASLt/cuRAND/NVRTC by soname. They are looked for
# in: VARSR_CUDA_LIBS, the NVIDIA wheels of every python3 site-packages (PyTorch installs them), the wheels
# that build-cuda.sh installs, and the usual CUDA toolkit folders.
section "CUDA libraries"
mapfile -t needed < <(readelf -d "$bin" | sed -n 's/.*NEEDED.*\[\(lib\(cu\|nvrtc\)[^]]*\)\].*/\1/p' |
    grep -v '^libcuda\.so')
echo "needs: libcuda.so.1 ${needed[*]}"

candidates=()
IFS=: read -r -a extra <<<"${VARSR_CUDA_LIBS:-}"
candidates+=("${extra[@]}")
for py in python3 python; do
    command -v "$py" >/dev/null || continue
    site=$("$py" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null) || continue
    [[ -n "$site" ]] && candidates+=("$site"/nvidia/*/lib "$site"/nvidia/*/lib64)
done
cache="${VARSR_CUDA_DIR:-$HOME/.cache/varsr-cuda}"
candidates+=("$cache"/*/nvidia/*/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib
    /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu)

libpath=()
missing=()
for so in "${needed[@]}"; do
    found=""
    for dir in "${candidates[@]}"; do
        if [[ -n "$dir" && -e "$dir/$so" ]]; then
            found=$dir
            break
        fi
    done
    if [[ -z "$found" ]]; then
        missing+=("$so")
        continue
    fi
    echo "  $so: $found"
    [[ " ${libpath[*]} " == *" $found "* ]] || libpath+=("$found")
done
if ((${#libpath[@]} > 0)); then
    joined=$(IFS=:; echo "${libpath[*]}")
    export LD_LIBRARY_PATH="$joined${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
if ((${#missing[@]} > 0)); then
    echo "missing: ${missing[*]}"
    echo "  install the matching NVIDIA wheels (nvidia-cublas==13.4.3.11 nvidia-curand==10.4.4.72"
    echo "  nvidia-cuda-nvrtc==13.4.92) or PyTorch built for CUDA 13, or point VARSR_CUDA_LIBS at them"
fi
if ldd "$bin" | grep -q 'not found'; then
    ldd "$bin" | grep 'not found'
    record "CUDA libraries" "FAILED (${missing[*]:-see ldd})"
else
    record "CUDA libraries" "ok"
fi

# --- parity fixtures on the GPU ------------------------------------------------------------------------------
for dt in "${dtypes[@]}"; do
    section "parity --device cuda --dtype $dt"
    start=$SECONDS
    if "$bin" parity "$fixtures" --device cuda --dtype "$dt"; then
        record "parity $dt" "ok ($((SECONDS - start))s)"
    else
        record "parity $dt" "FAILED (exit $?)"
    fi
done

# --- benchmarks: released-size model, random weights --------------------------------------------------------
if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
    for dt in "${dtypes[@]}"; do
        for run in 512 2048; do
            if [[ $run == 512 ]]; then args=("${bench_512[@]}"); else args=("${bench_2048[@]}"); fi
            section "bench --device cuda --dtype $dt ${args[*]}"
            start=$SECONDS
            if "$bin" bench --device cuda --dtype "$dt" "${args[@]}"; then
                record "bench $dt ${args[*]}" "ok ($((SECONDS - start))s wall)"
            else
                record "bench $dt ${args[*]}" "FAILED (exit $?)"
            fi
            nvidia-smi --query-gpu=memory.used --format=csv,noheader | sed 's/^/  GPU memory in use after: /'
        done
    done
fi

section "summary"
printf '%s\n' "${results[@]}"
exit "$failed"
