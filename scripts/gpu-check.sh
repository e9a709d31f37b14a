#!/usr/bin/env bash
# Issue 9's GPU acceptance in one short run, on a machine with a CUDA PyTorch for python3 (e.g. the device
# tool's H100/H200 machines): builds the addon against that torch (CUDA, NCCL), runs the engine's golden op
# tests on cuda and the fast-path tests (bf16 autocast, fused attention vs the manual path), trains a small
# LM on the GPU (fp32 and bf16), a 2-process data-parallel run on the GPU, and the GPT-2 125M benchmark
# against PyTorch eager with MFU.
#
# Prints one JSON line per check on stdout (and the benchmark's own JSON lines); full logs go to $OUT (or
# /tmp/hhkit-gpu). Needs Node >= 20 on PATH (or $NODE) and node_modules installed (such machines have no
# registry access: carry both). Usage: bash scripts/gpu-check.sh [--quick]   (--quick skips the benchmark)
# HHKIT_CHECK_DEVICE=cpu dry-runs every step on the CPU (to check the script itself without a GPU);
# HHKIT_CHECK_ARGS adds pretrain flags (e.g. a tiny model for that dry run).
set -u
cd "$(dirname "$0")/.."
logs=${OUT:-/tmp/hhkit-gpu}
mkdir -p "$logs"
node=${NODE:-node}
device=${HHKIT_CHECK_DEVICE:-cuda}
export HHKIT_NUM_THREADS=${HHKIT_NUM_THREADS:-4}

json_string() { python3 -c 'import json, sys; print(json.dumps(sys.stdin.read()))'; }
check() {
  local name=$1
  shift
  local t0 ok
  t0=$(date +%s)
  if "$@" >"$logs/$name.log" 2>&1; then ok=true; else ok=false; fi
  printf '{"check":"%s","ok":%s,"seconds":%s,"tail":%s}\n' "$name" "$ok" "$(($(date +%s) - t0))" \
    "$(tail -c 800 "$logs/$name.log" | json_string)"
}

if ! command -v "$node" >/dev/null; then
  echo '{"check":"node","ok":false,"tail":"no node on PATH: carry a Node 20 build and set NODE=/path/to/bin/node"}'
  exit 1
fi
printf '{"check":"machine","node":"%s","torch":%s,"gpu":%s}\n' "$("$node" -v)" \
  "$(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>&1 | json_string)" \
  "$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -1 | json_string)"

check build "$node" scripts/setup.mjs --rebuild-native
check addon "$node" -e "
  const a = require('./native/build/Release/hhkit.node');
  const f = { torch: a.torch_version(), cuda: a.built_with_cuda(), gpus: a.cuda_device_count(),
    nccl: a.dist_nccl_available(), gloo: a.dist_available(), sdpa: a.sdpa_available() };
  console.log(JSON.stringify(f));
  if ('$device' !== 'cpu' && (!f.cuda || f.gpus < 1)) process.exit(1);"
check golden-$device env HHKIT_TEST_DEVICE=$device "$node" --import tsx --test src/engine/golden.test.ts
check fast-paths "$node" --import tsx --test src/nn/fast-paths.test.ts src/engine/distributed.test.ts

check world "$node" bin/hhkit.js world --size small --out "$logs/world"
common=(--data "$logs/world/pretrain.jsonl" --vocab-size 2048 --steps 60 --block-size 256 --n-layer 6
  --n-head 8 --n-embd 512 --batch-size 16 --eval-every 30 --json ${HHKIT_CHECK_ARGS:-})
check pretrain-$device-fp32 "$node" bin/hhkit.js pretrain "${common[@]}" --device $device --out "$logs/lm-fp32"
check pretrain-$device-bf16 "$node" bin/hhkit.js pretrain "${common[@]}" --device $device --precision bf16 \
  --tokenizer "$logs/lm-fp32/tokenizer.json" --out "$logs/lm-bf16"
gpus=$("$node" -e "console.log(require('./native/build/Release/hhkit.node').cuda_device_count())" 2>/dev/null || echo 0)
backend=gloo
[ "${gpus:-0}" -ge 2 ] && backend=nccl # NCCL needs one GPU per rank; gloo all-reduces CUDA tensors too
check launch-$device-$backend "$node" bin/hhkit.js launch --nproc 2 --backend "$backend" -- pretrain "${common[@]}" \
  --device $device --batch-size 8 --tokenizer "$logs/lm-fp32/tokenizer.json" --out "$logs/lm-ddp"

if [ "${1:-}" != "--quick" ]; then
  HHKIT_BENCH_DEVICE=$device "$node" --import tsx bench/run.ts model 2>"$logs/bench.log"
fi
