#!/usr/bin/env bash
# The speed benchmark (bench/speed.ts) on an NVIDIA GPU: tfjs WebGPU through the NVIDIA Vulkan driver,
# against PyTorch CUDA on the same architectures, on a machine that has no Deno and no network.
#
#   bench/gpu.sh --prepare        here: bundle the benchmark into one JS file (tfjs and all, the MobileNetV2
#                                 weights inside), copy the wasm backend's binaries beside it, compress the
#                                 Deno binary with xz and extract Debian's libvulkan1 (the Vulkan loader),
#                                 all under bench/out/gpu/ (about 35 MB; carry that folder to the device)
#   bench/gpu.sh --check          here: run the prepared bundle with the xz'd Deno on the CPU (tiny backbone,
#                                 quick), and WebGPU through the extracted loader on the software Vulkan
#                                 driver (lavapipe) when it is installed: the --run path without the GPU
#   bench/gpu.sh --run [FLAGS]    on the device: unpack Deno, find the NVIDIA Vulkan ICD (or write one for
#                                 libGLX_nvidia.so.0), point VK_DRIVER_FILES at it, and run the benchmark:
#                                 first webgpu with and without this project's kernels (bench/webgpu.ts:
#                                 dispatches and samples/s per step), then the speed benchmark: tfjs webgpu
#                                 and wasm against PyTorch CUDA and CPU, budgets sized for a 10-minute slot.
#                                 FLAGS go to speed.ts and win (e.g. --quick).
#                                 Results: $OUT if set, else bench/out/gpu-results/
#
# Environment for --run: VK_DRIVER_FILES (use this ICD), PYTHON (a python3 with PyTorch; default: the
# first of python3, /usr/bin/python3 that imports torch).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=bench/out/gpu
BUNDLE=$DIR/speed.bundle.js
KERNELS_BUNDLE=$DIR/webgpu.bundle.js

prepare() {
  mkdir -p "$DIR"
  rm -rf "$DIR/vulkan" "$DIR"/*.deb
  deno bundle --quiet --platform deno --minify -o "$BUNDLE" bench/speed.ts
  deno bundle --quiet --platform deno --minify -o "$KERNELS_BUNDLE" bench/webgpu.ts
  local cache
  cache=$(deno info --json | deno eval --quiet \
    "console.log(JSON.parse(await new Response(Deno.stdin.readable).text()).npmCache)")
  cp "$cache"/registry.npmjs.org/@tensorflow/tfjs-backend-wasm/4.22.0/dist/tfjs-backend-wasm{,-simd,-threaded-simd}.wasm "$DIR/"
  xz -T0 -6 -c "$(readlink -f "$(command -v deno)")" >"$DIR/deno.xz"
  # The Vulkan loader, as Debian ships it (the device may have the NVIDIA driver but no loader).
  (cd "$DIR" && apt-get download libvulkan1 >/dev/null 2>&1) ||
    cp /var/cache/apt/archives/libvulkan1_*_amd64.deb "$DIR/"
  dpkg-deb -x "$DIR"/libvulkan1_*.deb "$DIR/vulkan"
  rm "$DIR"/libvulkan1_*.deb
  echo "prepared $DIR:"
  du -sh "$DIR"/* | sed 's/^/  /'
  du -sh "$DIR" | sed 's/^/  total /'
}

unpack_deno() {
  local deno=${TMPDIR:-/tmp}/daft-bench-deno
  [[ -x $deno ]] || { xz -dc "$DIR/deno.xz" >"$deno.part" && chmod +x "$deno.part" && mv "$deno.part" "$deno"; }
  echo "$deno"
}

use_vulkan_loader() {
  # Prefer the system's loader; else the one extracted from libvulkan1.
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
    export LD_LIBRARY_PATH="$PWD/$DIR/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
}

nvidia_icd() {
  local f
  for f in /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json \
    /usr/local/share/vulkan/icd.d/nvidia_icd*.json; do
    [[ -f $f ]] && { echo "$f"; return; }
  done
  # No manifest: write one for the driver library, if the driver's Vulkan part is there at all.
  local lib
  lib=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0 /{print $NF; exit}')
  [[ -z $lib ]] && lib=$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 2>/dev/null | head -1)
  [[ -z $lib ]] && return 1
  f=${TMPDIR:-/tmp}/daft-nvidia_icd.json
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$lib" >"$f"
  echo "$f"
}

pick_python() {
  local p
  for p in ${PYTHON:-} python3 /usr/bin/python3; do
    command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch, torchvision' 2>/dev/null && { echo "$p"; return; }
  done
  echo /usr/bin/python3 # the peer reports itself skipped
}

run() {
  [[ -f $BUNDLE ]] || { echo "no $BUNDLE: run bench/gpu.sh --prepare first (on a machine with Deno)" >&2; exit 1; }
  local deno results py
  deno=$(unpack_deno)
  use_vulkan_loader
  if [[ -z ${VK_DRIVER_FILES:-} ]]; then
    VK_DRIVER_FILES=$(nvidia_icd) || { echo "no NVIDIA Vulkan driver found (no ICD manifest, no libGLX_nvidia.so.0)" >&2; exit 2; }
  fi
  export VK_DRIVER_FILES VK_ICD_FILENAMES=$VK_DRIVER_FILES
  results=${OUT:-bench/out/gpu-results}
  mkdir -p "$results"
  py=$(pick_python)
  echo "deno $("$deno" --version | head -1); ICD $VK_DRIVER_FILES; python $py" >&2
  command -v nvidia-smi >/dev/null && nvidia-smi -L >&2 || true
  # WebGPU with and without this project's kernels (src/backend/webgpu_training.ts): dispatches and
  # samples/s per MobileNetV2 training step at batch 16.
  "$deno" run --allow-all --no-config "$KERNELS_BUNDLE" --batch 16 --steps 5 | tee "$results/webgpu-kernels.md"
  # Defaults sized for a 10-minute device slot; later flags (the caller's) win.
  "$deno" run --allow-all --no-config "$BUNDLE" --backends webgpu,wasm --peer-devices cuda,cpu \
    --budget 75 --headline-budget 120 --soak-jobs 10 \
    --python "$py" --peer-script bench/peer_torch.py --command "bench/gpu.sh --run $*" \
    --out "$results/BENCHMARKS-gpu.md" --json "$results/speed-gpu.json" "$@"
}

check() {
  [[ -f $BUNDLE && -f $KERNELS_BUNDLE ]] || prepare
  local deno
  deno=$(unpack_deno)
  echo "== the bundle on the CPU (wasm and cpu backends), with the xz'd Deno" >&2
  (cd "$DIR" && "$deno" run --allow-all --no-config speed.bundle.js --quick --backbones tiny \
    --backends wasm,cpu --skip-peer --soak-jobs 2 --budget 60 --headline-budget 60) |
    grep -E '^\| (ours|tiny)' || { echo "bundle check failed" >&2; exit 1; }
  local lvp=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
  if [[ -f $lvp ]]; then
    echo "== WebGPU through the extracted Vulkan loader, on lavapipe (software)" >&2
    (LD_LIBRARY_PATH="$PWD/$DIR/vulkan/usr/lib/x86_64-linux-gnu" VK_DRIVER_FILES=$lvp VK_ICD_FILENAMES=$lvp \
      "$deno" run --allow-all --no-config "$BUNDLE" --quick --backbones tiny --backends webgpu --skip-peer \
      --soak-jobs 0 --budget 90 --headline-budget 90) | grep -E '^\| ours' ||
      { echo "WebGPU check failed" >&2; exit 1; }
  fi
  echo "== WebGPU with and without this project's kernels, on this machine's adapter (if any)" >&2
  local rc=0 table
  table=$("$deno" run --allow-all --no-config "$KERNELS_BUNDLE" --batch 1 --size 32 --steps 1 2>&1) || rc=$?
  if [[ $rc -eq 2 ]]; then
    echo "   skipped: no WebGPU here" >&2
  else
    grep -E '^\| (stock|ours)' <<<"$table" || { echo "$table" | tail -20 >&2; echo "WebGPU kernels check failed" >&2; exit 1; }
  fi
  echo "check passed" >&2
}

case "${1:-}" in
--prepare) prepare ;;
--check) check ;;
--run) shift; run "$@" ;;
*) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 64 ;;
esac
