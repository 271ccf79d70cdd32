#!/usr/bin/env bash
# One run on a real NVIDIA GPU (issue 26), within about 9 minutes, offline, from what
# bench/gpu/prepare.sh packed into .carry/ and .gl/:
#   0. environment: the Vulkan loader, Node.js, Dawn (npm `webgpu`), the built bundles, the data;
#      nvidia-smi; the WebGPU adapter must be the NVIDIA GPU (not a fallback), else it stops here
#      (exit 3) before spending the lease;
#   1. the default model v2 starts training in the background (4 layers, same tokenizer, bf16
#      autocast, a budget of TRAIN_SECONDS of active training time);
#   2. meanwhile the GPU test tier runs on the hardware adapter (fidelity against the reference
#      engine; the two files that need ONNX Runtime are left out: it is not carried);
#   3. training paused (SIGSTOP) so the timings are clean: `bench.js --real-shapes` (SmolLM2-135M and
#      Qwen2.5-Coder-0.5B shapes, random weights, n = 2,048 and 8,192) next to transformers eager with
#      output_attentions and SDPA on the same GPU, with the fidelity check against transformers; and
#      the default model's own WebGPU table;
#   4. training resumed to the end of its budget; the final weights alone (float16) are kept.
# Everything lands in $OUT: validate.log, results.tar.xz (logs, tables, JSON), light.pt (the model).
# Usage, on the device machine from the repository root: bash bench/gpu/validate.sh
# Budgets (seconds): TESTS_SECONDS (140), BENCH_SECONDS (190), DEFAULT_SECONDS (40), TRAIN_SECONDS (260 active).
# For a dry run of the CPU-side parts without a GPU (as prepare.sh's caller does once):
#   VALIDATE_SKIP_GL=1 VALIDATE_PYTHON=/usr/bin/python3 VALIDATE_ALLOW_FALLBACK=1 VALIDATE_DEVICE=cpu VALIDATE_SHAPES=smollm2-135m VALIDATE_LENGTHS=32 \
#   TESTS_SECONDS=20 BENCH_SECONDS=120 TRAIN_SECONDS=10 OUT=/tmp/validate-dry bash bench/gpu/validate.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/validate-out}
TESTS_SECONDS=${TESTS_SECONDS:-140}
BENCH_SECONDS=${BENCH_SECONDS:-190}
TRAIN_SECONDS=${TRAIN_SECONDS:-260}
DEVICE=${VALIDATE_DEVICE:-cuda}
SHAPES=${VALIDATE_SHAPES:-smollm2-135m,qwen2.5-coder-0.5b}
LENGTHS=${VALIDATE_LENGTHS:-2048,8192}
FALLBACK_OK=${VALIDATE_ALLOW_FALLBACK:-0}
R="$OUT/r"
mkdir -p "$R"
T0=$(date +%s)
log() { echo "[validate +$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/validate.log"; }
pack() {
  tar -C "$OUT" -cJf "$OUT/results.tar.xz" r 2>/dev/null
  log "packed $(du -h "$OUT/results.tar.xz" | cut -f1) of results"
}

# ---- 0. environment -------------------------------------------------------------------------
if [ "${VALIDATE_SKIP_GL:-0}" != 1 ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
mkdir -p /tmp/al/bin
xz -dc .carry/node.xz > /tmp/al/bin/node && chmod +x /tmp/al/bin/node
export PATH=/tmp/al/bin:$PATH
tar -xJf .carry/webgpu.tar.xz
tar -xJf .carry/out.tar.xz
mkdir -p training/work/data
xz -dc .carry/train.bin.xz > training/work/data/train.bin
cp .carry/valid.bin .carry/tune.bin training/work/data/
PY=${VALIDATE_PYTHON:-$(command -v python3)}
log "node $(node --version), $PY ($($PY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1 | tail -1))"
nvidia-smi > "$R/nvidia-smi.txt" 2>&1; head -12 "$R/nvidia-smi.txt" | tee -a "$OUT/validate.log"
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && ! ls /usr/share/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=/tmp/al/xdg && mkdir -p -m 700 "$XDG_RUNTIME_DIR"
probe='const {create,globals}=require("webgpu");Object.assign(globalThis,globals);const gpu=create([]);
gpu.requestAdapter({powerPreference:"high-performance"}).then(a=>{if(!a){console.log("no adapter");process.exit(3)}
console.log(JSON.stringify({info:{vendor:a.info.vendor,architecture:a.info.architecture,device:a.info.device,description:a.info.description,isFallbackAdapter:a.info.isFallbackAdapter},features:[...a.features],maxStorageBufferBindingSize:a.limits.maxStorageBufferBindingSize,maxBufferSize:a.limits.maxBufferSize}));
process.exit(a.info.isFallbackAdapter&&process.env.FALLBACK_OK!=="1"?3:0)},e=>{console.log(String(e));process.exit(3)})'
if ! FALLBACK_OK=$FALLBACK_OK timeout 60 node -e "$probe" > "$R/adapter.json" 2>&1; then
  cat "$R/adapter.json" | tee -a "$OUT/validate.log"
  log "no hardware WebGPU adapter; diagnostics follow, nothing else runs"
  { echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"; ldconfig -p | grep -i vulkan; ls -la /usr/local/nvidia /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1; } | tee -a "$OUT/validate.log"
  pack
  exit 3
fi
log "adapter: $(cat "$R/adapter.json")"

# ---- 1. training in the background ----------------------------------------------------------
rm -rf training/work/ckpt training/work/train_log.txt
train() {
  $PY -u training/train.py --device "$DEVICE" --threads 8 --max-seconds "$TRAIN_SECONDS" --max-tokens 1e12 \
    --config '{"num_hidden_layers": 4}' --batch 32 --seq 1024 --long-seq 2048 --long-frac 0.25 \
    --schedule wsd --decay-frac 0.2 --warmup 300 --lr 2e-3 --prev-aux 0.5 --prev-head 0 \
    --copy-prob 0.35 --rand-prob 0.3 --rand-min 32 --rand-max 192 --eval-every 500 --ckpt-every 60 \
    --light-out "$OUT/light.pt" "$@" >> "$R/train.out" 2>&1 &
  TRAIN_PID=$!
}
train --amp bf16
log "training started (pid $TRAIN_PID, $TRAIN_SECONDS s of active training, bf16 autocast, fused attention)"

# ---- 2. GPU test tier on the hardware adapter (while the model trains) ----------------------
tests=$(ls out/test/gpu/*.test.js | grep -v -e heldOutLongWindow -e fuzz)
timeout "$TESTS_SECONDS" node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$R/gpu-tier.tap" $tests > "$R/gpu-tier.txt" 2>&1 &
TESTS_PID=$!
sleep 30
if ! kill -0 "$TRAIN_PID" 2>/dev/null; then
  log "training stopped early: $(tail -n 3 "$R/train.out" | tr '\n' ' '); again in float32 with the explicit attention"
  rm -rf training/work/ckpt
  ATTENTION_LENS_TRAIN_SDPA=0 train --amp none
fi
wait "$TESTS_PID"
log "GPU tier: exit $? ($(grep -c '^ok' "$R/gpu-tier.tap" 2>/dev/null) ok, $(grep -c '^not ok' "$R/gpu-tier.tap" 2>/dev/null) not ok at the top level); $(grep -E '^# (pass|fail|cancelled)' "$R/gpu-tier.tap" | tr '\n' ' ')"
tail -n 3 "$R/train.out" | tee -a "$OUT/validate.log"

# ---- 3. benchmarks with training paused -----------------------------------------------------
# SIGUSR1 first: the trainer takes the pause out of its time budget (training/train.py --max-seconds).
kill -USR1 "$TRAIN_PID" 2>/dev/null && sleep 0.5 && kill -STOP "$TRAIN_PID" 2>/dev/null && log "training paused"
sleep 1
export ATTENTION_LENS_PYTHON=$PY
timeout "$BENCH_SECONDS" node out/bench/bench.js --real-shapes --engines webgpu --shapes "$SHAPES" \
  --lengths "$LENGTHS" --repeats 2 --max-seconds 40 --out "$R/real-shapes" > "$R/real-shapes.txt" 2> "$R/real-shapes.err"
log "real shapes: exit $?"
cat "$R/real-shapes.txt" >> "$OUT/validate.log"
timeout "${DEFAULT_SECONDS:-40}" node out/bench/bench.js --no-cpu --no-torch --models default-model --lengths "${DEFAULT_LENGTHS:-256,1024,2048}" --repeats 3 > "$R/default-model-webgpu.txt" 2>&1
log "default model table: exit $?"
kill -CONT "$TRAIN_PID" 2>/dev/null && kill -USR2 "$TRAIN_PID" 2>/dev/null && log "training resumed"
pack

# ---- 4. the rest of the training ------------------------------------------------------------
wait "$TRAIN_PID"
log "training: exit $?; $(grep -E 'eval step' "$R/train.out" | tail -n 2 | tr '\n' ' ')"
cp training/work/train_log.txt "$R/train_log.txt" 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$R/gpu.csv" 2>&1
pack
ls -la "$OUT" | tee -a "$OUT/validate.log"
