"""Model manifests: the shipped one, every kind of bad manifest, and how models are found."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models import ManifestError, ModelLoadError, ModelNotFoundError, find_manifest, load_detector, load_manifest
from models.manifest import parse_manifest, read_labels_file
from models.runtime import MODELS_PATH_ENV, list_models

MODELS = Path(__file__).resolve().parents[1] / "models"

GOOD = {
    "name": "tiny", "file": "tiny.onnx", "input_size": [64, 48], "layout": "NCHW", "dtype": "float32",
    "color_order": "RGB", "normalization": {"scale": 1 / 255}, "letterbox": True, "decoder": "yolov8",
    "labels": ["person", "car"], "score_threshold": 0.4, "class_thresholds": {"car": 0.3}, "nms_iou": 0.5,
}


def bad(tmp_path, match, **changes):
    data = {**GOOD, **changes}
    data = {k: v for k, v in data.items() if v is not ...}
    with pytest.raises(ManifestError, match=match) as e:
        parse_manifest(data, tmp_path, "x.yaml")
    return str(e.value)


def test_shipped_manifest():
    m = load_manifest(MODELS / "ssd_mobilenet_v2_coco.yaml")
    assert m.name == "ssd_mobilenet_v2_coco" and m.decoder == "ssd" and m.dtype == "uint8"
    assert m.layout == "NHWC" and m.color_order == "RGB" and m.input_size == (300, 300)
    lm = m.label_map
    assert len(lm) == 80 and lm[1] == "person" and lm[3] == "car" and lm[8] == "truck" and lm[90] == "toothbrush"
    assert 12 not in lm  # COCO-90 ids have gaps
    assert m.num_classes == 91
    assert m.model_path == MODELS / "ssd_mobilenet_v2_coco.onnx" and m.model_path.is_file()
    assert m.threshold_for("car") == 0.4 and m.threshold_for("person") == 0.5
    assert m.nms_iou is None


def test_good_manifest_parses(tmp_path):
    m = parse_manifest(GOOD, tmp_path)
    assert m.label_map == {0: "person", 1: "car"} and m.num_classes == 2 and m.min_threshold == 0.3
    assert m.model_path == tmp_path / "tiny.onnx"


def test_typo_field_is_named(tmp_path):
    msg = bad(tmp_path, "unknown field", score_treshold=0.3)
    assert "score_treshold" in msg


@pytest.mark.parametrize("field,value,match", [
    ("layout", "HWC", "layout"),
    ("dtype", "int8", "dtype"),
    ("color_order", "rgb", "color_order"),
    ("input_size", [8, 8], "16..4096"),
    ("input_size", [640], "input_size"),
    ("file", "model.tflite", "not an .onnx"),
    ("score_threshold", 1.5, "score_threshold"),
    ("nms_iou", 0, "nms_iou"),
    ("name", "has space", "name"),
    ("normalization", {"std": [0, 1, 1]}, "std values must be > 0"),
    ("normalization", {"mean": [1, 2]}, "1 value"),
    ("class_thresholds", {"car": 2}, "0..1"),
])
def test_bad_values(tmp_path, field, value, match):
    msg = bad(tmp_path, match, **{field: value})
    assert field in msg and msg.startswith("x.yaml: invalid model manifest")


def test_missing_required_field(tmp_path):
    assert "decoder" in bad(tmp_path, "Field required", decoder=...)


def test_unknown_decoder_lists_known(tmp_path):
    msg = bad(tmp_path, "unknown decoder 'yolov5'", decoder="yolov5")
    assert "ssd" in msg and "yolov8" in msg and "nanodet" in msg and "centernet" in msg


def test_bad_decoder_options(tmp_path):
    bad(tmp_path, "decoder_options for yolov8: outptu", decoder_options={"outptu": "x"})
    bad(tmp_path, "strides", decoder="nanodet", decoder_options={"strides": []})


def test_uint8_cannot_be_normalised(tmp_path):
    bad(tmp_path, "uint8", dtype="uint8", normalization={"scale": 0.5})


def test_labels_exactly_one_source(tmp_path):
    bad(tmp_path, "exactly one", labels=...)
    bad(tmp_path, "exactly one", labels_file="coco80.txt")


def test_labels_problems(tmp_path):
    bad(tmp_path, "empty", labels=[])
    bad(tmp_path, "duplicate label names", labels=["car", "car"])
    bad(tmp_path, "class_thresholds name labels the model does not have: \\['bus'\\]",
        class_thresholds={"bus": 0.2})
    bad(tmp_path, "labels_file 'nope.txt' not found", labels=..., labels_file="nope.txt")
    bad(tmp_path, "integer ids as keys, got \\['person'\\]", labels={"person": 0})
    bad(tmp_path, "list of names", labels="person,car")
    # JSON object keys are strings: {"1": "person"} is the same map as YAML's {1: person}
    assert parse_manifest({**GOOD, "labels": {"1": "person", "3": "car"}, "class_thresholds": {}},
                          tmp_path).label_map == {1: "person", 3: "car"}


def test_labels_file_plain_numbered_and_builtin(tmp_path):
    (tmp_path / "plain.txt").write_text("# comment\nbag\n\nunbroken bag\n")
    (tmp_path / "numbered.txt").write_text("1 person\n3 car\n")
    assert read_labels_file(tmp_path / "plain.txt") == ["bag", "unbroken bag"]
    assert read_labels_file(tmp_path / "numbered.txt") == {1: "person", 3: "car"}
    m = parse_manifest({**GOOD, "labels": None, "labels_file": "numbered.txt"}, tmp_path)
    assert m.label_map == {1: "person", 3: "car"} and m.num_classes == 4
    # shipped lists are found by name from any folder
    m = parse_manifest({**GOOD, "labels": None, "labels_file": "coco80.txt", "class_thresholds": {}}, tmp_path)
    assert len(m.label_map) == 80 and m.label_map[0] == "person" and m.label_map[79] == "toothbrush"


def test_file_level_errors(tmp_path):
    with pytest.raises(ManifestError, match="cannot read manifest"):
        load_manifest(tmp_path / "missing.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\n  file: [unclosed\n")
    with pytest.raises(ManifestError, match="(?s)not valid YAML.*broken.yaml\", line 2"):
        load_manifest(p)
    p = tmp_path / "broken.json"
    p.write_text("{\"name\": ")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(p)
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ManifestError, match="must be a mapping"):
        load_manifest(p)
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(GOOD))
    with pytest.raises(ManifestError, match="model file 'tiny.onnx' not found"):
        load_manifest(p)
    assert load_manifest(p, check_file=False).name == "tiny"


# ---- finding models ------------------------------------------------------------------------------------

def test_find_by_name_default_and_path():
    assert find_manifest("default").name == "ssd_mobilenet_v2_coco"
    assert find_manifest("ssd_mobilenet_v2_coco").name == "ssd_mobilenet_v2_coco"
    assert find_manifest(MODELS / "ssd_mobilenet_v2_coco.onnx").name == "ssd_mobilenet_v2_coco"
    assert find_manifest(str(MODELS / "ssd_mobilenet_v2_coco.yaml")).name == "ssd_mobilenet_v2_coco"


def test_unknown_name_lists_available():
    with pytest.raises(ModelNotFoundError, match="'nosuch' not found; available: .*ssd_mobilenet_v2_coco"):
        find_manifest("nosuch")
    with pytest.raises(ModelNotFoundError, match="no such file"):
        find_manifest("/nonexistent/model.onnx")


def test_onnx_without_manifest(tmp_path):
    (tmp_path / "lonely.onnx").write_bytes(b"\x08\x01")
    with pytest.raises(ManifestError, match="no manifest beside it.*lonely.yaml"):
        find_manifest(tmp_path / "lonely.onnx")


def test_installer_folder_found_via_extra_dirs_and_env(tmp_path, monkeypatch):
    d = tmp_path / "site_models" / "bags"
    d.mkdir(parents=True)
    (d / "tiny.onnx").write_bytes(b"")
    (d / "tiny.yaml").write_text(json.dumps(GOOD))     # JSON is valid YAML too
    assert find_manifest("tiny", extra_dirs=[tmp_path / "site_models"]).model_path == d / "tiny.onnx"
    monkeypatch.setenv(MODELS_PATH_ENV, str(tmp_path / "site_models"))
    assert find_manifest("tiny").name == "tiny"
    names = [m.name for _, m in list_models() if not isinstance(m, Exception)]
    assert "tiny" in names and "ssd_mobilenet_v2_coco" in names


def test_broken_manifest_of_the_asked_model_is_reported(tmp_path):
    (tmp_path / "mine.yaml").write_text("name: mine\nfile: mine.onnx\n")
    with pytest.raises(ManifestError, match="mine.yaml: invalid model manifest"):
        find_manifest("mine", extra_dirs=[tmp_path])
    # ...and does not hide the other models
    assert find_manifest("default", extra_dirs=[tmp_path]).name == "ssd_mobilenet_v2_coco"


# ---- manifest vs. the real model --------------------------------------------------------------------------

def copy_shipped(tmp_path, **changes) -> Path:
    """The shipped manifest with changes, pointing at the shipped .onnx (not copied: 68 MB)."""
    from ruamel.yaml import YAML
    data = YAML(typ="safe", pure=True).load((MODELS / "ssd_mobilenet_v2_coco.yaml").read_text())
    data.update(file=str(MODELS / "ssd_mobilenet_v2_coco.onnx"), labels_file=str(MODELS / "labels/coco90.txt"),
                **changes)
    p = tmp_path / "variant.yaml"
    p.write_text(json.dumps(data))
    return p


def test_decoder_outputs_mismatch(tmp_path):
    with pytest.raises(ModelLoadError, match="lacks outputs \\['boxes:0'\\]"):
        load_detector(copy_shipped(tmp_path, decoder_options={"boxes": "boxes:0"}))


def test_corrupt_onnx_file(tmp_path):
    shutil.copy(MODELS / "labels" / "coco80.txt", tmp_path / "tiny.onnx")
    (tmp_path / "tiny.yaml").write_text(json.dumps(GOOD))
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load"):
        load_detector(tmp_path / "tiny.yaml")
