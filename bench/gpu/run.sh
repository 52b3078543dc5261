#!/usr/bin/env bash
# bench/gpu/run.sh: build, test and benchmark torchvid on the lent GPU machine in one call
# (issue 7 item 1). Run from the repo root through the device tool; see bench/gpu/README.md.
#
# That machine has PyTorch 2.11 + CUDA 13 in /opt/torch/.venv, CMake, ninja, nvcc; no Node, no
# npm, no network. bench/gpu/pack.sh (run here first) leaves in .cache/gpu/ the node binary
# (node.xz) and the run-time node_modules (node_modules.tar.xz); carry ".cache/gpu".
#
# Stages (each logged to $OUT/logs/<stage>.log, timed, and listed in $OUT/summary.tsv):
#   setup   unpack node + node_modules; find python/torch/CUDA; $OUT/env.txt
#   build   CUDA addon against the torch package (TORCHVID_LIBTORCH = dirname(torch.__file__)),
#           checked to be the cuda variant; the prebuild torchvid.cuda-libtorch2.11.napi.node
#           (scripts/prebuilds.mjs --from, with its load check); $OUT/info.json from info()
#   test    node tests with TORCHVID_TEST_DEVICE=cuda against that binary
#   models  random-weight ms-1.7b and zeroscope-576w checkpoints, converted (float16 by default)
#   bench   node --import tsx bench/index.ts --device cuda
# and always, last: the CUDA prebuild + sidecar, info, logs and bench results copied into $OUT.
#
# Usage: bash bench/gpu/run.sh [--stages setup,build,test,models,bench] [--cpu-dry-run]
# Environment (all optional):
#   TORCHVID_GPU_BUDGET_S   seconds this call may take in all (default 570: the tool's limit is 600)
#   TORCHVID_PYTHON         python3 with torch (default /opt/torch/.venv/bin/python3)
#   TORCHVID_GPU_TESTS      test files (default: the native, scheduler and pipeline tests; "all")
#   TORCHVID_GPU_MODELS     random models to make (default "ms-1.7b zeroscope-576w")
#   TORCHVID_GPU_DTYPES     export dtypes (default "float16"; e.g. "float16 bfloat16")
#   TORCHVID_GPU_BENCH_ARGS extra arguments for bench/index.ts
#   TORCH_CUDA_ARCH_LIST    default: the capability of GPU 0 (9.0 on H100/H200)
# --cpu-dry-run checks the script on a machine without a GPU: system python/libtorch, CPU, the
# tiny random model, a short test list, build into .cache/gpu-work/build (build/ is not touched).
set -uo pipefail

self=$(readlink -f "$0")
cd "$(dirname "$self")/../.." || exit 1
repo=$(pwd)

# ---- one stage, in a child bash, under `timeout` -------------------------------------------
if [[ ${1:-} == __stage ]]; then
  set -eo pipefail
  stage=$2
  # shellcheck disable=SC1090
  source "$TVG_WORK/env.sh"
  case $stage in
  setup)
    mkdir -p "$TVG_WORK/node/bin"
    unxz_to() { # unxz_to FILE.xz DEST: xz, else python's lzma
      if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else "$TVG_PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
    }
    # The carried node (when there) comes first on PATH; unpacked once per machine.
    if [[ -s .cache/gpu/node.xz ]]; then
      if [[ ! -x $TVG_WORK/node/bin/node || .cache/gpu/node.xz -nt $TVG_WORK/node/bin/node ]]; then
        unxz_to .cache/gpu/node.xz "$TVG_WORK/node/bin/node.tmp"
        chmod +x "$TVG_WORK/node/bin/node.tmp"
        mv "$TVG_WORK/node/bin/node.tmp" "$TVG_WORK/node/bin/node"
      fi
    elif ! node --version >/dev/null 2>&1; then
      echo "no node on PATH and no .cache/gpu/node.xz: run bench/gpu/pack.sh here and carry .cache/gpu"
      exit 1
    fi
    echo "node $(node --version) at $(command -v node)"
    if [[ ! -f node_modules/tsx/package.json || ! -f node_modules/cmake-js/package.json ]]; then
      [[ -s .cache/gpu/node_modules.tar.xz ]] || { echo "no node_modules and no .cache/gpu/node_modules.tar.xz: run bench/gpu/pack.sh and carry .cache/gpu"; exit 1; }
      unxz_to .cache/gpu/node_modules.tar.xz "$TVG_WORK/node_modules.tar"
      tar -xf "$TVG_WORK/node_modules.tar" && rm -f "$TVG_WORK/node_modules.tar"
      echo "node_modules unpacked ($(ls node_modules | wc -l) entries)"
    fi
    {
      echo "date: $(date -u +%FT%TZ)"
      echo "node: $(node --version)"
      echo "python: $TVG_PYTHON"
      "$TVG_PYTHON" -c 'import torch, sys; print("torch:", torch.__version__, "cuda:", torch.version.cuda, "cudnn:", torch.backends.cudnn.version(), "available:", torch.cuda.is_available()); [print(f"gpu{i}:", torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i), round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1), "GiB") for i in range(torch.cuda.device_count())]'
      echo "TORCHVID_LIBTORCH: ${TORCHVID_LIBTORCH:-}"
      echo "TORCH_CUDA_ARCH_LIST: ${TORCH_CUDA_ARCH_LIST:-}  CUDACXX: ${CUDACXX:-}"
      cmake --version | head -1
      command -v nvcc >/dev/null && nvcc --version | tail -2
      command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
      echo "cpus: $(nproc)"
    } | tee "$OUT/env.txt"
    ;;
  build)
    node scripts/build-native.mjs --out "$TVG_BUILD"
    variant=$(node -p "require('./$TVG_BUILD/Release/torchvid.json').variant")
    echo "built variant: $variant"
    if [[ $variant != "$TVG_VARIANT" ]]; then
      echo "expected the $TVG_VARIANT variant: CMake did not find CUDA in the torch package (see the configure output above)"
      exit 1
    fi
    rm -rf "$TVG_WORK/prebuild-out"
    node scripts/prebuilds.mjs --from "$TVG_BUILD" --out "$TVG_WORK/prebuild-out"
    TORCHVID_ADDON="$repo/$TVG_BUILD/Release/torchvid.node" node --import tsx -e "import('./lib/runtime.ts').then((m) => console.log(JSON.stringify(m.info(), null, 2)))" | tee "$OUT/info.json"
    ;;
  test)
    if [[ $TVG_TESTS == all ]]; then files=(tests/*.test.ts); else read -r -a files <<<"$TVG_TESTS"; fi
    TORCHVID_ADDON="$repo/$TVG_BUILD/Release/torchvid.node" TORCHVID_TEST_DEVICE=$TVG_DEVICE \
      node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=junit --test-reporter-destination="$OUT/tests.junit.xml" "${files[@]}"
    ;;
  models)
    for model in $TVG_MODELS; do
      ckpt=$TVG_WORK/ckpt/$model
      if [[ ! -f $ckpt/model_index.json ]]; then
        node bin/torchvid.js convert --random "$model" "$ckpt" --dtype float16 --overwrite
      fi
      for dtype in $TVG_DTYPES; do
        dst=$TVG_WORK/models/$model-$dtype
        if [[ -f $dst/manifest.json ]]; then echo "$dst: already there"; continue; fi
        start=$SECONDS
        node bin/torchvid.js convert "$ckpt" "$dst" --dtype "$dtype" --overwrite
        echo "$model $dtype: converted in $((SECONDS - start)) s, $(du -sh "$dst" | cut -f1)"
      done
    done
    ls -la "$TVG_WORK/models"
    ;;
  bench)
    [[ -f bench/index.ts ]] || { echo "bench/index.ts is not in this tree"; exit 3; }
    mkdir -p "$OUT/bench"
    # shellcheck disable=SC2086
    TORCHVID_ADDON="$repo/$TVG_BUILD/Release/torchvid.node" TORCHVID_BENCH_MODELS_DIR="$TVG_WORK/models" TORCHVID_BENCH_OUT="$OUT/bench" \
      node --import tsx bench/index.ts --device "$TVG_DEVICE" ${TORCHVID_GPU_BENCH_ARGS:-}
    ;;
  *)
    echo "unknown stage $stage"
    exit 2
    ;;
  esac
  exit 0
fi

# ---- the driver ------------------------------------------------------------------------------
stages=setup,build,test,models,bench
dry=0
while (($#)); do
  case $1 in
  --stages) stages=$2; shift 2 ;;
  --cpu-dry-run) dry=1; shift ;;
  -h | --help) sed -n '2,/^set -uo/p' "$self" | sed '$d'; exit 0 ;;
  *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ ,$stages, == *,setup,* ]] || stages=setup,$stages # the others need its environment

export OUT=${OUT:-$repo/.cache/gpu-out}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
export TVG_WORK=$repo/.cache/gpu-work
mkdir -p "$TVG_WORK" "$OUT/logs"
budget=${TORCHVID_GPU_BUDGET_S:-570}
reserve=20 # kept for collecting results

if ((dry)); then
  python=${TORCHVID_PYTHON:-/usr/bin/python3}
  device=cpu variant=cpu build_dir=.cache/gpu-work/build
  tests=${TORCHVID_GPU_TESTS:-tests/native-loader.test.ts tests/native-tensor.test.ts}
  models=${TORCHVID_GPU_MODELS:-tiny} dtypes=${TORCHVID_GPU_DTYPES:-float32}
  libtorch=${TORCHVID_LIBTORCH:-}
else
  python=${TORCHVID_PYTHON:-/opt/torch/.venv/bin/python3}
  device=cuda variant=cuda build_dir=build
  tests=${TORCHVID_GPU_TESTS:-$(cd "$repo" && ls tests/native*.test.ts tests/schedulers.test.ts tests/pipelines-*.test.ts 2>/dev/null | tr '\n' ' ')}
  models=${TORCHVID_GPU_MODELS:-ms-1.7b zeroscope-576w} dtypes=${TORCHVID_GPU_DTYPES:-float16}
  # The torch package is a libtorch root: share/cmake/Torch and lib/ (find-libtorch reads both).
  libtorch=${TORCHVID_LIBTORCH:-$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)}
fi
arch_list=${TORCH_CUDA_ARCH_LIST:-}
if ((!dry)) && [[ -z $arch_list ]]; then
  arch_list=$("$python" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))' 2>/dev/null || echo 9.0)
fi
cudacxx=${CUDACXX:-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)}

# Everything a stage needs, in one file the child bash sources.
{
  printf 'export PATH=%q\n' "$TVG_WORK/node/bin:$(dirname "$python"):${cudacxx:+$(dirname "$cudacxx"):}$PATH"
  printf 'export OUT=%q TVG_WORK=%q TVG_PYTHON=%q TORCHVID_PYTHON=%q\n' "$OUT" "$TVG_WORK" "$python" "$python"
  printf 'export TVG_DEVICE=%q TVG_VARIANT=%q TVG_BUILD=%q TVG_TESTS=%q TVG_MODELS=%q TVG_DTYPES=%q\n' "$device" "$variant" "$build_dir" "$tests" "$models" "$dtypes"
  printf 'export CMAKE_BUILD_PARALLEL_LEVEL=%q\n' "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  [[ -n $libtorch ]] && printf 'export TORCHVID_LIBTORCH=%q\n' "$libtorch"
  if ((!dry)); then
    printf 'export TORCH_CUDA_ARCH_LIST=%q CUDAARCHS=%q\n' "$arch_list" "${arch_list//./}"
    [[ -n $cudacxx ]] && printf 'export CUDACXX=%q CUDA_HOME=%q\n' "$cudacxx" "$(dirname "$(dirname "$cudacxx")")"
  fi
  printf 'unset TORCHVID_ADDON\n'
} >"$TVG_WORK/env.sh"

printf 'stage\tstatus\tseconds\tlimit_s\n' >"$OUT/summary.tsv"
failed=0
# Stage caps in seconds (each also bounded by what is left of the budget).
declare -A cap=([setup]=120 [build]=300 [test]=240 [models]=420 [bench]=420)
for stage in setup build test models bench; do
  [[ ,$stages, == *,$stage,* ]] || continue
  left=$((budget - SECONDS - reserve))
  if ((left < 15)); then
    printf '%s\tskipped (budget)\t0\t0\n' "$stage" >>"$OUT/summary.tsv"
    echo "== $stage: skipped, budget spent"
    continue
  fi
  limit=$((cap[$stage] < left ? cap[$stage] : left))
  echo "== $stage (limit ${limit}s)"
  start=$SECONDS
  timeout --kill-after=10 "$limit" bash "$self" __stage "$stage" >"$OUT/logs/$stage.log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  case $rc in 0) status=ok ;; 124 | 137) status="timeout" ;; 3) status="skipped" ;; *) status="failed ($rc)" ;; esac
  printf '%s\t%s\t%s\t%s\n' "$stage" "$status" "$took" "$limit" >>"$OUT/summary.tsv"
  tail -n 25 "$OUT/logs/$stage.log" | sed "s/^/   [$stage] /"
  echo "== $stage: $status in ${took}s"
  if [[ $status != ok && $status != skipped ]]; then
    failed=1
    # Nothing after a failed setup or build can run.
    [[ $stage == setup || $stage == build ]] && break
  fi
done

# ---- collect (always) ------------------------------------------------------------------------
mkdir -p "$OUT/prebuilds"
cp -r "$TVG_WORK/prebuild-out/prebuilds/." "$OUT/prebuilds/" 2>/dev/null || true
cp "$build_dir/Release/torchvid.json" "$OUT/build-sidecar.json" 2>/dev/null || true
echo
echo "== summary ($OUT)"
column -t -s $'\t' "$OUT/summary.tsv" 2>/dev/null || cat "$OUT/summary.tsv"
(cd "$OUT" && find . -type f -printf '%8s  %p\n' | sort -k2)
exit $failed
