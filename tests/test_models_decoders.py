"""Decoders through synthetic outputs, and a YOLOv8-layout model built here with the onnx helper API
run end to end through Detector (letterbox, normalisation, decoding, thresholds, NMS, original pixels)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models import ModelLoadError, load_detector
from models.decoders import DECODERS, DecoderError
from models.decoders.centernet import CenterNetDecoder, CenterNetOptions
from models.decoders.nanodet import NanoDetDecoder, NanoDetOptions
from models.decoders.ssd import SSDDecoder, SSDOptions
from models.decoders.yolov8 import YoloV8Decoder, YoloV8Options


def test_registry():
    assert set(DECODERS) == {"ssd", "yolov8", "nanodet", "centernet", "classifier"}


# ---- SSD ----------------------------------------------------------------------------------------------------

def ssd_outputs(rows, n=None):
    pad = 5
    boxes = np.zeros((1, pad, 4), np.float32)
    scores = np.zeros((1, pad), np.float32)
    classes = np.zeros((1, pad), np.float32)
    for i, (b, s, c) in enumerate(rows):
        boxes[0, i], scores[0, i], classes[0, i] = b, s, c
    return {"detection_boxes:0": boxes, "detection_scores:0": scores, "detection_classes:0": classes,
            "num_detections:0": np.array([len(rows) if n is None else n], np.float32)}


def test_ssd_converts_normalised_yxyx_and_uses_num_detections():
    out = ssd_outputs([((0.1, 0.2, 0.5, 0.6), 0.9, 3), ((0.0, 0.0, 1.0, 1.0), 0.4, 8)])
    out["detection_scores:0"][0, 2] = 0.99   # padding beyond num_detections must be ignored
    c = SSDDecoder(SSDOptions(), 91).decode(out, (300, 200), 0.3)
    np.testing.assert_allclose(c.boxes, [[60, 20, 180, 100], [0, 0, 300, 200]], atol=1e-4)
    assert c.class_ids.tolist() == [3, 8] and c.scores.tolist() == pytest.approx([0.9, 0.4])
    assert len(SSDDecoder(SSDOptions(), 91).decode(out, (300, 200), 0.5).scores) == 1
    assert SSDDecoder(SSDOptions(class_id_offset=1), 91).decode(out, (300, 200), 0.3).class_ids.tolist() == [4, 9]


def test_ssd_missing_output_and_bad_shapes():
    d = SSDDecoder(SSDOptions(), 91)
    with pytest.raises(DecoderError, match="lacks outputs"):
        d.bind(["detection_boxes:0", "detection_scores:0"])
    out = ssd_outputs([])
    out["detection_boxes:0"] = np.zeros((1, 5, 3), np.float32)
    with pytest.raises(DecoderError, match="unexpected output shapes"):
        d.decode(out, (300, 300), 0.5)


# ---- YOLOv8 -------------------------------------------------------------------------------------------------

def yolo_pred(rows, num_classes, n=8):
    """rows: (cx, cy, w, h, class, score) in model-input pixels -> [1, 4 + C, n]."""
    pred = np.zeros((1, 4 + num_classes, n), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(rows):
        pred[0, :4, i] = (cx, cy, w, h)
        pred[0, 4 + cls, i] = score
        pred[0, 4 + (cls + 1) % num_classes, i] = score / 3   # a weaker second class must not win
    return pred


def test_yolov8_decoder_both_layouts():
    rows = [(100, 290, 100, 100, 1, 0.9), (300, 300, 20, 40, 0, 0.2)]
    pred = yolo_pred(rows, 3)
    d = YoloV8Decoder(YoloV8Options(), 3)
    d.bind(["output0"])
    for arr in (pred, pred.transpose(0, 2, 1)):
        c = d.decode({"output0": arr}, (640, 640), 0.25)
        np.testing.assert_allclose(c.boxes, [[50, 240, 150, 340]])
        assert c.class_ids.tolist() == [1] and c.scores.tolist() == pytest.approx([0.9])


def test_yolov8_label_count_mismatch_is_explained():
    d = YoloV8Decoder(YoloV8Options(), 80)
    with pytest.raises(DecoderError, match="neither axis is 4 \\+ 80 classes = 84; does the label list"):
        d.decode({"output0": np.zeros((1, 6, 8400), np.float32)}, (640, 640), 0.25)
    with pytest.raises(DecoderError, match="no output 'nope'"):
        YoloV8Decoder(YoloV8Options(output="nope"), 80).bind(["output0"])


def tiny_yolo_onnx(path, pred: np.ndarray, input_shape):
    """A real ONNX graph in ultralytics' export layout: output0 = pred + 0 * mean(images)."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["m0"]),
        helper.make_node("Add", ["pred", "m0"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_yolov8",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(pred.shape))],
        [numpy_helper.from_array(pred, "pred"), numpy_helper.from_array(np.array(0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def yolo_manifest(tmp_path, pred, input_shape=(1, 3, 640, 640), **changes):
    tiny_yolo_onnx(tmp_path / "tiny_yolo.onnx", pred, input_shape)
    m = {"name": "tiny_yolo", "file": "tiny_yolo.onnx", "input_size": [640, 640], "layout": "NCHW",
         "dtype": "float32", "color_order": "RGB", "normalization": {"scale": 1 / 255}, "letterbox": True,
         "decoder": "yolov8", "labels": ["person", "car", "bag"], "score_threshold": 0.5,
         "class_thresholds": {"bag": 0.3}, "nms_iou": 0.45, **changes}
    p = tmp_path / "tiny_yolo.yaml"
    p.write_text(json.dumps(m))
    return p


def test_yolov8_onnx_end_to_end_letterboxed(tmp_path):
    # original 1280x720 -> letterbox 640x640: scale 0.5, 140 px bars top and bottom
    rows = [
        (100, 290, 100, 100, 1, 0.90),   # car: original [100, 200, 300, 400]
        (104, 292, 100, 100, 1, 0.80),   # same car again: NMS removes it
        (104, 292, 100, 100, 0, 0.70),   # a person on the same spot: other class, stays
        (400, 340, 60, 60, 2, 0.35),     # bag: above its own 0.3 threshold
        (500, 340, 60, 60, 0, 0.45),     # person below 0.5: dropped
        (320, 60, 40, 40, 1, 0.95),      # entirely in the top padding bar: clipped away
    ]
    det = load_detector(yolo_manifest(tmp_path, yolo_pred(rows, 3)), threads=1)
    dets = det.detect(np.zeros((720, 1280, 3), np.uint8))
    assert [(d.label, round(d.score, 2)) for d in dets] == [("car", 0.9), ("person", 0.7), ("bag", 0.35)]
    np.testing.assert_allclose(dets[0].box, (100, 200, 300, 400), atol=0.01)
    np.testing.assert_allclose(dets[1].box, (108, 204, 308, 404), atol=0.01)
    np.testing.assert_allclose(dets[2].box, (740, 340, 860, 460), atol=0.01)
    assert dets[0].class_id == 1 and dets[2].class_id == 2


def test_preprocess_nchw_rgb_scaled_letterboxed(tmp_path):
    det = load_detector(yolo_manifest(tmp_path, yolo_pred([], 3)))
    img = np.zeros((320, 640, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 255      # BGR
    x, tf = det.preprocess(img)
    assert x.shape == (1, 3, 640, 640) and x.dtype == np.float32
    assert (tf.scale_x, tf.pad_y) == (1.0, 160.0)
    np.testing.assert_allclose(x[0, :, 320, 320], [255 / 255, 20 / 255, 10 / 255], rtol=1e-6)  # R, G, B
    np.testing.assert_allclose(x[0, :, 10, 320], [114 / 255] * 3, rtol=1e-6)                 # padding


def test_preprocess_nhwc_bgr_mean_std(tmp_path):
    man = yolo_manifest(tmp_path, yolo_pred([], 3), input_shape=(1, 64, 64, 3), input_size=[64, 64],
                        layout="NHWC", color_order="BGR", letterbox=False,
                        normalization={"scale": 1.0, "mean": [100, 110, 120], "std": [2, 4, 5]})
    det = load_detector(man)
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 255
    x, _ = det.preprocess(img)
    assert x.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(x[0, 5, 5], [(10 - 100) / 2, (20 - 110) / 4, (255 - 120) / 5], rtol=1e-6)
    assert det.detect(img) == []


def test_manifest_must_match_the_model(tmp_path):
    pred = yolo_pred([], 3)
    with pytest.raises(ModelLoadError, match="needs \\[None, 3, 320, 320\\]"):
        load_detector(yolo_manifest(tmp_path, pred, input_size=[320, 320]))
    with pytest.raises(ModelLoadError, match="needs \\[None, 640, 640, 3\\]"):
        load_detector(yolo_manifest(tmp_path, pred, layout="NHWC"))
    with pytest.raises(ModelLoadError, match="is tensor\\(float\\), manifest says dtype uint8"):
        load_detector(yolo_manifest(tmp_path, pred, dtype="uint8", normalization={}))
    with pytest.raises(ModelLoadError, match="no input named 'image_tensor:0' \\(inputs: \\['images'\\]\\)"):
        load_detector(yolo_manifest(tmp_path, pred, input_name="image_tensor:0"))


# ---- NanoDet ------------------------------------------------------------------------------------------------

def test_nanodet_gfl_decoding():
    w = h = 64
    C, bins = 3, 8
    outs = {}
    for i, s in enumerate((8, 16, 32)):
        n = (w // s) * (h // s)
        outs[f"cls{i}"] = np.zeros((1, n, C), np.float32)
        outs[f"dist{i}"] = np.zeros((1, n, 4 * bins), np.float32)
    # one object on stride 16, cell (x=2, y=1): centre (40, 24); distances l,t,r,b = 3, 1, 2, 4 bins
    cell = 1 * (64 // 16) + 2
    outs["cls1"][0, cell, 2] = 0.8
    logits = np.full((4, bins), -20.0, np.float32)
    for side, k in enumerate((3, 1, 2, 4)):
        logits[side, k] = 20.0
    outs["dist1"][0, cell] = logits.reshape(-1)
    c = NanoDetDecoder(NanoDetOptions(), C).decode(outs, (w, h), 0.3)
    assert c.class_ids.tolist() == [2] and c.scores.tolist() == pytest.approx([0.8])
    np.testing.assert_allclose(c.boxes, [[40 - 48, 24 - 16, 40 + 32, 24 + 64]], atol=1e-3)
    # NanoDet-Plus centre priors sit on the cell corner
    c = NanoDetDecoder(NanoDetOptions(center_offset=0.0), C).decode(outs, (w, h), 0.3)
    np.testing.assert_allclose(c.boxes[0, :2], [32 - 48, 16 - 16], atol=1e-3)
    assert len(NanoDetDecoder(NanoDetOptions(), C).decode(outs, (w, h), 0.9).scores) == 0
    # exports that end in logits: sigmoid(0) = 0.5 for every empty cell, sigmoid(2) = 0.88 for the object
    outs["cls1"][0, cell, 2] = 2.0
    c = NanoDetDecoder(NanoDetOptions(scores_are_logits=True), C).decode(outs, (w, h), 0.6)
    assert c.class_ids.tolist() == [2] and c.scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)))


def test_nanodet_missing_stride_is_explained():
    outs = {"cls": np.zeros((1, 64, 3), np.float32), "dist": np.zeros((1, 64, 32), np.float32)}
    with pytest.raises(DecoderError, match="stride 16"):
        NanoDetDecoder(NanoDetOptions(), 3).decode(outs, (64, 64), 0.3)


# ---- CenterNet ----------------------------------------------------------------------------------------------

def test_centernet_decoding():
    det = np.zeros((1, 4, 6), np.float32)
    det[0, 0] = (10, 20, 110, 220, 0.7, 2)
    det[0, 1] = (0.1, 0.1, 0.2, 0.2, 0.6, 0)
    c = CenterNetDecoder(CenterNetOptions(), 80).decode({"tower_0/detections": det}, (512, 512), 0.5)
    np.testing.assert_allclose(c.boxes[0], [10, 20, 110, 220])
    assert c.class_ids.tolist() == [2, 0]
    c = CenterNetDecoder(CenterNetOptions(normalized=True), 80).decode({"tower_0/detections": det}, (512, 256), 0.65)
    np.testing.assert_allclose(c.boxes, [[5120, 5120, 56320, 56320]])
    with pytest.raises(DecoderError, match="no output"):
        CenterNetDecoder(CenterNetOptions(), 80).bind(["x"])


# ---- classifier (second stage on a crop) -----------------------------------------------------------------

def test_classifier_onnx_on_a_crop(tmp_path):
    logits = np.array([[0.5, 3.0, -1.0]], np.float32)      # softmax -> [0.074, 0.908, 0.018]
    man = yolo_manifest(tmp_path, logits, input_shape=(1, 3, 224, 224), input_size=[224, 224], letterbox=False,
                        decoder="classifier", decoder_options={"softmax": True, "top_k": 2},
                        labels=["bag", "unbroken bag", "torn bag"], class_thresholds={}, score_threshold=0.05,
                        nms_iou=None)
    det = load_detector(man)
    crop = np.zeros((90, 60, 3), np.uint8)
    dets = det.detect(crop)
    assert [d.label for d in dets] == ["unbroken bag", "bag"]
    assert dets[0].score == pytest.approx(np.exp(3) / np.exp([0.5, 3.0, -1.0]).sum(), rel=1e-5)
    assert dets[0].box == (0.0, 0.0, 60.0, 90.0)              # the whole crop, in its own pixels
    with pytest.raises(ModelLoadError, match="no output 'probs'"):
        load_detector(yolo_manifest(tmp_path, logits, input_shape=(1, 3, 224, 224), input_size=[224, 224],
                                    decoder="classifier", decoder_options={"output": "probs"},
                                    labels=["bag", "unbroken bag", "torn bag"], class_thresholds={}))


# ---- the real NanoDet / CenterNet candidates, where the shared model folder exists -----------------------

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


@pytest.mark.skipif(not (SHARED_MODELS / "nanodet_m_coco.onnx").is_file(),
                    reason="the other candidate models are not shipped; they exist only in the shared "
                           "folder beside the checkout (../shared/models), which plain clones do not have")
@pytest.mark.parametrize("name", ["nanodet_m_coco", "centernet_mobilenetv3_coco"])
def test_real_candidate_models_decode(name):
    spec = importlib.util.spec_from_file_location(
        "bench_inference", Path(__file__).resolve().parents[1] / "bench" / "inference.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from models.manifest import parse_manifest
    from models.runtime import Detector

    man = parse_manifest(dict(bench.CANDIDATES[name], name=name), SHARED_MODELS)
    img = cv2.imread(str(Path(__file__).parent / "data" / "darknet_dog.jpg"))
    dets = Detector(man).detect(img)
    bike = [d for d in dets if d.label == "bicycle"]
    assert bike, dets
    # same bicycle as the shipped SSD finds (x 77..549, y 134..409 of 768x576)
    x1, y1, x2, y2 = bike[0].box
    assert abs(x1 - 77) < 60 and abs(x2 - 549) < 60 and abs(y1 - 134) < 60 and abs(y2 - 409) < 60
