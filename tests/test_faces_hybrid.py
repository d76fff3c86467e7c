"""The hybrid face detector: a face pasted at a known position, no face on photos without people, the
large ffhq10 faces dlib's HOG detector misses, NMS, and auto's fallback when the CNN model is missing."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from oldphoto_bench.faces import DlibDetector, build_detector, detect_faces, resolve_backend
from oldphoto_bench.faces import hybrid as hybrid_module
from oldphoto_bench.faces.hybrid import CNN_MODEL, HybridDetector, box_iou, hybrid_unavailable_reason, nms
from oldphoto_bench.imageio import load_image, to_tensor

needs_hybrid = pytest.mark.skipif(hybrid_unavailable_reason() is not None,
                                  reason=f"hybrid face backend unavailable: {hybrid_unavailable_reason()}")

# The astronaut's face in skimage's 512x512 photo, read off a 4x zoom with a 10 px grid: eyebrows at y 90,
# chin at y 178, cheek edges at x 182 and 270 (at the nose); eye centres (pupils) at (201, 101) and (246, 103).
ASTRONAUT_FACE_BOX = np.array([182.0, 90.0, 270.0, 178.0])
ASTRONAUT_EYES = np.array([[201.0, 101.0], [246.0, 103.0]])
# dlib's boxes run from the forehead to just below the mouth (measured on this face: y 76-167), so a correct
# box overlaps the brow-to-chin box by IoU ~0.7; a box on the hair or neck by less than 0.4.
MIN_IOU = 0.5


@pytest.fixture(scope="module")
def hybrid() -> HybridDetector:
    if hybrid_unavailable_reason() is not None:
        pytest.skip(f"hybrid face backend unavailable: {hybrid_unavailable_reason()}")
    return HybridDetector()


def _composite(scale: float, offset: tuple[int, int]) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The astronaut's head (x 130-330, y 30-230) resized by ``scale`` and pasted at ``offset`` (x, y) into the
    rocket photo (no people) resized to 900x700. Returns (image, true face box, true eye centres)."""
    x0, y0, side = 130, 30, 200
    head = to_tensor(data.astronaut())[..., y0:y0 + side, x0:x0 + side]
    n = round(side * scale)
    head = F.interpolate(head, size=(n, n), mode="bilinear", align_corners=False, antialias=True)
    background = F.interpolate(to_tensor(data.rocket()), size=(700, 900), mode="area")
    ox, oy = offset
    background[..., oy:oy + n, ox:ox + n] = head
    corner, shift = np.array([x0, y0, x0, y0]), np.array([ox, oy, ox, oy])
    box = (ASTRONAUT_FACE_BOX - corner) * scale + shift
    eyes = (ASTRONAUT_EYES - corner[:2]) * scale + shift[:2]
    return background, box, eyes


@needs_hybrid
@pytest.mark.parametrize(("scale", "offset"), [(1.0, (80, 400)), (2.5, (380, 120))])
def test_hybrid_finds_a_pasted_face_at_its_known_position(hybrid, scale, offset):
    image, true_box, true_eyes = _composite(scale, offset)
    faces = detect_faces(image, detector=hybrid)
    assert len(faces) == 1, [f.box for f in faces]
    (face,) = faces
    assert box_iou(face.box, true_box) >= MIN_IOU
    eye_dist = np.linalg.norm(true_eyes[1] - true_eyes[0])
    assert np.abs(face.landmarks5[:2] - true_eyes).max() < 0.2 * eye_dist
    assert face.backend == "hybrid" and face.landmarks.shape == (68, 2)
    assert face.score >= hybrid.confident_score and face.scores["cnn"] == face.score and "hog" in face.scores
    assert face.to_dict()["scores"]["cnn"] == pytest.approx(face.score, abs=1e-4)


@needs_hybrid
def test_hybrid_finds_no_face_on_photos_without_people(hybrid):
    """HOG proposes boxes on the rocket and the motorcycle (low margins); the CNN confirms none of them."""
    proposed = 0
    for name in ("coffee", "chelsea", "rocket", "motorcycle"):
        a = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        image = to_tensor(a)
        proposed += len(hybrid.proposals(image))
        assert detect_faces(image, detector=hybrid) == [], name
    assert proposed >= 1  # the CNN, not the HOG threshold, is what rejects them


@needs_hybrid
def test_hybrid_finds_the_large_ffhq_faces_hog_misses(hybrid, shared_data):
    """00005, 00008 and 00009: large, frontal, clean faces that dlib's HOG detector (as released) misses."""
    for stem in ("00005", "00008", "00009"):
        image, _ = load_image(shared_data / "faces" / "ffhq10" / f"{stem}.png")
        assert DlibDetector()(image) == [], stem
        (face,) = detect_faces(image, detector=hybrid)
        assert face.score >= hybrid.confident_score and face.size > 200, stem
        x0, y0, x1, y1 = face.box
        p = face.landmarks5
        assert np.all((p[:, 0] > x0) & (p[:, 0] < x1) & (p[:, 1] > y0) & (p[:, 1] < y1)), stem


def test_nms_keeps_the_best_box_of_each_face():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]]
    scores = [0.2, 0.9, 0.1, -0.3]
    assert nms(boxes, scores) == [1, 2]
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0


@needs_hybrid
def test_auto_falls_back_to_dlib_without_the_cnn_model(monkeypatch, caplog):
    real = hybrid_module.find_model_file
    monkeypatch.setattr(hybrid_module, "find_model_file",
                        lambda name, path=None: None if name == CNN_MODEL else real(name, path))
    with caplog.at_level(logging.INFO, logger="oldphoto_bench"):
        assert resolve_backend("auto") == "dlib"
    assert "hybrid not used" in caplog.text and CNN_MODEL in caplog.text
    with pytest.raises(RuntimeError, match=CNN_MODEL):
        build_detector("hybrid")
