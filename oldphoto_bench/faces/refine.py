"""Stage 3 of restoration: detect faces, enhance each aligned face, blend it back.

For every face (left to right): align to the template (:mod:`.align`), run the enhancer (at its own size;
only its change is resized to the crop, see :func:`_enhance`), match the result's
colour histogram to the stage-1 crop, hand its low frequencies back to the stage-1 crop towards the mask's
edge, warp it back and blend it through the feathered mask (:mod:`.blend`).
Crops are always taken from the input image; blends accumulate on the output, so overlapping faces are
each enhanced from the stage-1 pixels.

Without an enhancer (no face checkpoint yet) nothing is changed: faces are only detected and reported with
status ``"detected"``. Faces smaller than ``min_face`` pixels (box side) are skipped with a note: the
enhancer would have to invent almost every detail of them. Faces the detector is not sure of (``score`` below
its ``confident_score``, e.g. a face cut by the photo's edge) are left unchanged with status ``"uncertain"``:
an enhancer fed a half face or a face-like texture smears it.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..imageio import gray_to_rgb, rgb_to_luma
from .align import FACE_SCALE, FACE_SIZE, align_face, alignment_matrix
from .blend import match_histograms, paste_back
from .detect import build_detector, detect_faces

log = logging.getLogger("oldphoto_bench")

MIN_FACE = 32
MAX_CROP = 1024  # largest aligned crop of the native-scale default (a 1024 px crop warps in well under 1 s)


def native_crop_size(landmarks5, face_scale: float = FACE_SCALE, least: int = FACE_SIZE,
                     most: int = MAX_CROP) -> int:
    """Side of the aligned crop that keeps the face at its own scale, ``S = 256 / s_256`` (``s_256``: the scale
    of the alignment to a 256 px crop), rounded up to a multiple of 8 and kept in ``[least, most]``.

    A fixed 256 px crop shrinks a large face before it is warped back: measured on aged faces/ffhq10 (faces
    of about 400 px), passing the stage-1 crop through unchanged left the face box at 0.90 of its Sobel
    sharpness with a 256 px crop and 0.95 with a 512 px one (results/faces/README.md).
    """
    m = alignment_matrix(landmarks5, FACE_SIZE, face_scale)
    scale = float(abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])) ** 0.5
    side = 8 * math.ceil(FACE_SIZE / max(scale, 1e-6) / 8 - 1e-6)
    return int(min(max(side, least), most))


def _enhance(enhancer: nn.Module, crop: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    """Run the enhancer on ``crop`` ``(1, 3, S, S)`` at the enhancer's own size ``s`` (``enhancer.size`` when
    it has one) and return the enhanced crop at ``S``.

    When ``s != S`` only the enhancer's change is resized, ``crop + resize_S(G(x) - x)`` with
    ``x = resize_s(crop)``: the crop keeps its detail finer than the enhancer's grid instead of being
    replaced by an upsampled (blurred) face. Measured on aged faces/ffhq10 (faces of about 400 px aligned
    at S = 256): see results/faces/README.md.
    """
    size = crop.shape[-1]
    net_size = int(getattr(enhancer, "size", size))
    x = crop.to(device)
    if net_size != size:
        x = F.interpolate(x, size=(net_size, net_size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        y = enhancer(x).float().clamp(0.0, 1.0)
    if net_size != size:
        change = F.interpolate(y - x.float(), size=(size, size), mode="bilinear", align_corners=False,
                               antialias=True)
        y = (crop.to(device).float() + change).clamp(0.0, 1.0)
    return y.to(crop.device)


def refine_faces(image: torch.Tensor, enhancer: nn.Module | None, backend: str = "auto", size: int | None = None,
                 min_face: float = MIN_FACE, device: str | torch.device = "cpu", detector=None,
                 face_scale: float = FACE_SCALE, fallback: torch.Tensor | None = None,
                 min_score: float | None = None) -> tuple[torch.Tensor, list[dict]]:
    """``(refined image, per-face report)`` for ``image`` ``(1, 3, H, W)`` in [0, 1].

    ``fallback``: a pixel-aligned image of the same size (the restore pipeline passes its input) to detect
    faces on when none is found on ``image``: a smooth global restoration can hide a face from the detector
    that found it on the old photo (measured: dlib finds the astronaut's face on the aged photo, not on the
    tiny model's restoration). Faces found there get ``"detected_on": "fallback"`` in the report.

    ``min_score``: faces scoring below it are left unchanged (default: the detector's ``confident_score``).

    ``size``: side of the aligned crop; None (default): each face at its own scale, at least 256 px
    (:func:`native_crop_size`). The enhancer runs at its own size either way (:func:`_enhance`).

    Report entries: ``{"box": [x0, y0, x1, y1], "landmarks": [[x, y] x 5], "score", "backend", "size",
    "status": "enhanced" | "skipped" | "uncertain" | "detected", "note"}`` (plus ``"landmarks68"``, and
    ``"crop"``, the aligned crop's side, for enhanced faces). A photo
    without faces comes back as an unchanged copy. ``detector`` reuses a built detector; ``backend`` picks one
    otherwise.
    """
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"refine_faces takes one (1, 3, H, W) image, got {tuple(image.shape)}")
    if fallback is not None and fallback.shape != image.shape:
        raise ValueError(f"fallback {tuple(fallback.shape)} must have the shape of image {tuple(image.shape)}")
    detector = detector if detector is not None else build_detector(backend)
    if min_score is None:
        min_score = float(getattr(detector, "confident_score", float("-inf")))
    faces = detect_faces(image, detector=detector)
    detected_on = "image"
    if not faces and fallback is not None:
        faces, detected_on = detect_faces(fallback, detector=detector), "fallback"
    out = image.clone()
    # A gray photo keeps gray faces: per-channel histogram matching alone would leave the enhancer's colour.
    gray = bool(torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2]))
    report = []
    if enhancer is not None:
        enhancer.eval()
    for face in faces:
        entry = face.to_dict()
        entry["detected_on"] = detected_on
        if face.size < min_face:
            entry.update(status="skipped", note=f"skipped: face {face.size:.0f} px < {min_face:g} px")
        elif face.score < min_score:
            entry.update(status="uncertain",
                         note=f"left unchanged: detection score {face.score:.2f} < {min_score:g}")
        elif enhancer is None:
            entry.update(status="detected", note="no face enhancer checkpoint: face left unchanged")
        else:
            side = size if size is not None else native_crop_size(face.landmarks5, face_scale)
            crop, matrix = align_face(image, face.landmarks5, side, face_scale)
            enhanced = match_histograms(_enhance(enhancer, crop, device), crop)
            if gray:
                enhanced = gray_to_rgb(rgb_to_luma(enhanced))
            out, _ = paste_back(out, enhanced, matrix, reference=crop)
            entry.update(status="enhanced", note="", crop=int(side))
        report.append(entry)
    n_enh = sum(e["status"] == "enhanced" for e in report)
    log.debug("faces: %d detected, %d enhanced", len(report), n_enh)
    return out, report
