"""Face detection backends (dlib, cascade), auto selection and its fallback, and the `faces` command."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from oldphoto_bench.faces import (
    CascadeDetector,
    DlibDetector,
    box_to_landmarks5,
    build_detector,
    detect_faces,
    dlib_unavailable_reason,
    find_landmark_model,
    landmarks68_to_5,
    resolve_backend,
)
from oldphoto_bench.imageio import to_tensor

needs_dlib = pytest.mark.skipif(dlib_unavailable_reason() is not None,
                                reason=f"dlib backend unavailable: {dlib_unavailable_reason()}")


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return to_tensor(data.astronaut())


@pytest.fixture(scope="module")
def coffee() -> torch.Tensor:
    return to_tensor(data.coffee())


# The astronaut's face, by eye: the skin between hairline and chin spans about x 180-265, y 80-175.
ASTRONAUT_FACE_CENTRE = (222.0, 125.0)


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _check_astronaut_face(face) -> None:
    x0, y0, x1, y1 = face.box
    cx, cy = ASTRONAUT_FACE_CENTRE
    assert x0 < cx < x1 and y0 < cy < y1
    assert 60 < x1 - x0 < 140
    p = face.landmarks5
    assert p.shape == (5, 2)
    assert p[0, 0] < p[1, 0] and p[3, 0] < p[4, 0]  # left before right
    assert max(p[0, 1], p[1, 1]) < p[2, 1] < min(p[3, 1], p[4, 1])  # eyes above nose above mouth
    assert np.all((p[:, 0] > x0) & (p[:, 0] < x1) & (p[:, 1] > y0) & (p[:, 1] < y1))


@pytest.fixture(scope="module")
def cascade() -> CascadeDetector:
    return CascadeDetector()


def test_cascade_one_face_in_astronaut_none_in_coffee(cascade, astronaut, coffee):
    faces = detect_faces(astronaut, detector=cascade)
    assert len(faces) == 1
    _check_astronaut_face(faces[0])
    assert faces[0].backend == "cascade" and faces[0].landmarks is None
    assert detect_faces(coffee, detector=cascade) == []


@needs_dlib
def test_dlib_one_face_in_astronaut_none_in_coffee(astronaut, coffee):
    det = DlibDetector()
    faces = detect_faces(astronaut, detector=det)
    assert len(faces) == 1
    _check_astronaut_face(faces[0])
    assert faces[0].backend == "dlib" and faces[0].landmarks.shape == (68, 2)
    assert faces[0].score >= det.score_threshold
    assert detect_faces(coffee, detector=det) == []


@needs_dlib
def test_dlib_threshold_drops_the_suit_patch(astronaut):
    """With no threshold the HOG detector (one upsampling) also reports a box on the suit, far from the face."""
    loose = DlibDetector(score_threshold=0.0)(astronaut)
    assert len(loose) >= 2
    suit = [f for f in loose if f.box[1] > 250]
    assert suit and all(f.score < DlibDetector().score_threshold for f in suit)


@needs_dlib
def test_backends_agree_on_the_astronaut(cascade, astronaut):
    a = detect_faces(astronaut, detector=cascade)[0]
    b = detect_faces(astronaut, detector=DlibDetector())[0]
    assert _iou(a.box, b.box) > 0.5
    eye_dist = np.linalg.norm(b.landmarks5[1] - b.landmarks5[0])
    assert np.abs(a.landmarks5 - b.landmarks5).max() < 0.5 * eye_dist


def test_landmarks68_to_5_closed_form():
    pts = np.arange(136, dtype=np.float64).reshape(68, 2)
    five = landmarks68_to_5(pts)
    np.testing.assert_allclose(five[0], pts[36:42].mean(0))
    np.testing.assert_allclose(five[1], pts[42:48].mean(0))
    np.testing.assert_array_equal(five[2:], pts[[30, 48, 54]])
    with pytest.raises(ValueError):
        landmarks68_to_5(pts[:5])


def test_box_points_scale_with_the_box():
    a = box_to_landmarks5([10, 20, 110, 120])
    b = box_to_landmarks5([20, 40, 220, 240])  # the same box doubled
    np.testing.assert_allclose(b, 2 * a)


def test_detection_on_a_large_image_maps_back(cascade, astronaut):
    """A 2x copy detected through the max_side downscaling gives the box of the original, doubled."""
    big = torch.nn.functional.interpolate(astronaut, scale_factor=2, mode="bilinear", align_corners=False)
    small_faces = detect_faces(astronaut, detector=cascade)
    big_faces = detect_faces(big, detector=CascadeDetector(max_side=512))
    assert len(big_faces) == 1
    np.testing.assert_allclose(big_faces[0].box, 2 * np.array(small_faces[0].box), atol=2.0)


def test_auto_falls_back_to_cascade_without_dlib(monkeypatch, caplog, astronaut):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    with caplog.at_level(logging.INFO, logger="oldphoto_bench"):
        assert resolve_backend("auto") == "cascade"
    text = caplog.text
    assert "backend cascade" in text and "dlib not used" in text and "dlib is not importable" in text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="oldphoto_bench"):
        faces = detect_faces(astronaut, backend="auto")
    assert "backend cascade" in caplog.text
    assert len(faces) == 1 and faces[0].backend == "cascade"
    with pytest.raises(RuntimeError, match="dlib"):
        DlibDetector()


@needs_dlib
def test_auto_picks_hybrid_when_installed(caplog):
    with caplog.at_level(logging.INFO, logger="oldphoto_bench"):
        assert build_detector("auto").name == "hybrid"
    assert "backend hybrid" in caplog.text


def test_unknown_backend_lists_valid_names():
    with pytest.raises(KeyError, match="auto, hybrid, dlib, cascade"):
        resolve_backend("mtcnn")


def test_landmark_model_found_without_importing_its_package(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "face_recognition_models", raising=False)
    found = find_landmark_model()
    assert "face_recognition_models" not in sys.modules
    if found is not None:
        assert found.name == "shape_predictor_68_face_landmarks.dat" and found.stat().st_size > 1_000_000
    assert find_landmark_model(tmp_path) is None  # an explicit folder without the file
    (tmp_path / "shape_predictor_68_face_landmarks.dat").write_bytes(b"x")
    assert find_landmark_model(tmp_path) == tmp_path / "shape_predictor_68_face_landmarks.dat"


def test_detect_faces_rejects_batches(astronaut, cascade):
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        detect_faces(astronaut.expand(2, -1, -1, -1), detector=cascade)


def test_faces_cli_writes_crops_and_json_and_exits_1_on_a_bad_file(tmp_path, capsys):
    from oldphoto_bench.cli import main

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(data.astronaut()).save(src / "astronaut.png")
    Image.fromarray(data.coffee()).save(src / "coffee.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    rc = main(["faces", str(src), "--out", str(out), "--backend", "cascade", "--size", "128"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "broken.png" in err
    report = json.loads((out / "faces.json").read_text())
    by_name = {e["input"].rsplit("/", 1)[-1]: e for e in report["images"]}
    assert set(by_name) == {"astronaut.png", "coffee.jpg"}
    assert by_name["coffee.jpg"]["faces"] == []
    (face,) = by_name["astronaut.png"]["faces"]
    assert by_name["astronaut.png"]["backend"] == "cascade"
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and face["crop"] == "astronaut_face0.png"
    with Image.open(out / face["crop"]) as crop:
        assert crop.size == (128, 128)
    assert [f["input"].rsplit("/", 1)[-1] for f in report["failed"]] == ["broken.png"]
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_face0.png", "faces.json", "manifest.json"]


def test_faces_cli_help_mentions_outputs(capsys):
    from oldphoto_bench.cli import main

    with pytest.raises(SystemExit):
        main(["faces", "--help"])
    text = capsys.readouterr().out
    assert "faces.json" in text and "--backend" in text and "_face<k>.png" in text
