#!/usr/bin/env bash
# Fresh installs as a user gets them, each in a new venv (no system site packages) in a temp dir:
#   base   `pip install .`: classifies Fashion-MNIST test images with the committed int8 TFLite and ONNX
#          models through the installed `edgecnn predict`, with TensorFlow and the other train extras absent
#   train  `pip install '.[train]'`: trains a tiny model and writes all six exports, with sympy absent
#   ray    `pip install '.[ray]'`: scores a folder with `predict --out` on a local Ray cluster and on worker
#          processes, the same bytes, with TensorFlow absent
# PYTHON picks the interpreter the venvs are made from (default python3); SMOKE_PARTS the parts (default: all).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
helper=$repo/.ci/smoke_helper.py
bundle=$repo/models/fashion-cnn
work=$(mktemp -d "${TMPDIR:-/tmp}/edgecnn-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Install from a copy of the working tree, so that builds leave nothing (build/, stale modules) in the checkout.
mkdir "$work/src"
tar -C "$repo" --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ -cf - . | tar -C "$work/src" -xf -

fresh_venv() {  # fresh_venv NAME REQUIREMENT: a new venv $work/NAME with REQUIREMENT installed
  local start=$SECONDS
  "$PYTHON" -m venv "$work/$1"
  "$work/$1/bin/python" -m pip install --disable-pip-version-check --quiet "$2"
  echo "$1: venv + pip install took $((SECONDS - start)) s"
  (cd "$work" && "$work/$1/bin/python" -c 'import edgecnn, sys
installed = edgecnn.__file__.startswith(sys.prefix)
print("edgecnn from", edgecnn.__file__, "" if installed else "- FAIL: not the installed package")
sys.exit(not installed)')
}

absent() {  # absent VENV MODULE...: none of the modules can be imported there
  local module
  for module in "${@:2}"; do
    if "$1/bin/python" -c "import $module" 2>/dev/null; then
      echo "FAIL: '$module' is importable in $1" >&2
      return 1
    fi
  done
  echo "not importable, as intended: ${*:2}"
}

smoke_base() {
  local venv=$work/base
  fresh_venv base "$work/src"
  absent "$venv" tensorflow keras tf2onnx onnx matplotlib
  cd "$work"
  # 100 images: both models get 90 right and agree on all 100 (91% on the whole test set).
  "$venv/bin/python" -I "$helper" images "$work/images" 100
  for model in model_int8.tflite model_int8.onnx; do
    "$venv/bin/edgecnn" predict "$work"/images/*.png --model "$bundle/$model" --json > "$work/$model.json"
  done
  "$venv/bin/python" -I "$helper" predictions "$work/images/labels.json" 85 97 \
    "$work/model_int8.tflite.json" "$work/model_int8.onnx.json"
}

smoke_train() {
  local venv=$work/train out=$work/tiny
  fresh_venv train "$work/src[train]"
  absent "$venv" sympy
  cd "$work"
  "$venv/bin/edgecnn" train --epochs 1 --limit 2000 --out "$out"
  "$venv/bin/edgecnn" export --model "$out/model.keras" --format all --out "$out" --calibration-samples 100
  "$venv/bin/python" -I "$helper" manifest "$out" model_fp32.tflite model_fp16.tflite model_dynamic.tflite \
    model_int8.tflite model_fp32.onnx model_int8.onnx
}

smoke_ray() {
  local venv=$work/ray
  fresh_venv ray "$work/src[ray]"
  absent "$venv" tensorflow keras
  cd "$work"
  "$venv/bin/python" -I "$helper" images "$work/ray-images" 100
  rm "$work/ray-images/labels.json"
  local rc=0
  "$venv/bin/edgecnn" predict "$work/ray-images" --out "$work/ray.csv" --model "$bundle/model_int8.onnx" --ray \
    --workers 2 --chunk-size 25 || rc=$?
  "$venv/bin/edgecnn" predict "$work/ray-images" --out "$work/local.csv" --model "$bundle/model_int8.onnx" \
    --workers 2 --chunk-size 25
  [ "$rc" = 0 ] && cmp "$work/ray.csv" "$work/local.csv" && [ "$(wc -l < "$work/ray.csv")" = 101 ]
  echo "ray and local rows identical: $(wc -l < "$work/ray.csv") lines"
}

passed=0 failed=0
for part in ${SMOKE_PARTS:-base train ray}; do
  echo "== smoke $part"
  start=$SECONDS
  set +e
  (set -e; "smoke_$part")
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    echo "PASS $part ($((SECONDS - start)) s)"; passed=$((passed + 1))
  else
    echo "FAIL $part (exit $rc, $((SECONDS - start)) s)"; failed=$((failed + 1))
  fi
done
echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
