"""Face refinement (stage 3): offline detection with five points, alignment, a SPADE face enhancer, blending.

:func:`detect_faces` (backends ``hybrid`` / ``dlib`` / ``cascade``, :mod:`.detect`, :mod:`.hybrid`),
:func:`align_face` and its inverse (:mod:`.align`), :class:`SPADEFaceGenerator` and :func:`face_training_step` (:mod:`.enhancer`,
:mod:`.train_step`), :func:`paste_back` with histogram matching and a feathered mask (:mod:`.blend`), and
:func:`refine_faces`, the whole stage (:mod:`.refine`).
"""

from .align import (
    FACE_SCALE,
    FACE_SIZE,
    TEMPLATE_5,
    align_face,
    alignment_matrix,
    apply_matrix,
    crop_footprint,
    similarity_matrix,
    template_points,
    unwarp,
    warp_affine,
)
from .blend import feather_mask, inner_mask, match_channel, match_histograms, paste_back
from .detect import (
    BACKENDS,
    CASCADE_POINTS_IN_BOX,
    DETECTORS,
    DLIB_SCORE_THRESHOLD,
    DLIB_UPSAMPLE,
    CascadeDetector,
    DlibDetector,
    Face,
    box_to_landmarks5,
    build_detector,
    detect_faces,
    dlib_unavailable_reason,
    find_landmark_model,
    find_model_file,
    landmarks68_to_5,
    resolve_backend,
)
from .enhancer import SPADE, SPADEFaceGenerator, SPADEResBlock
from .hybrid import HybridDetector, hybrid_unavailable_reason
from .refine import MIN_FACE, refine_faces
from .train_step import FACE_LOSS_WEIGHTS, build_face_discriminator, face_loss_weights, face_training_step

__all__ = [
    "BACKENDS",
    "CASCADE_POINTS_IN_BOX",
    "DETECTORS",
    "DLIB_SCORE_THRESHOLD",
    "DLIB_UPSAMPLE",
    "FACE_LOSS_WEIGHTS",
    "FACE_SCALE",
    "FACE_SIZE",
    "MIN_FACE",
    "SPADE",
    "TEMPLATE_5",
    "CascadeDetector",
    "DlibDetector",
    "Face",
    "HybridDetector",
    "SPADEFaceGenerator",
    "SPADEResBlock",
    "align_face",
    "alignment_matrix",
    "apply_matrix",
    "box_to_landmarks5",
    "build_detector",
    "build_face_discriminator",
    "crop_footprint",
    "detect_faces",
    "dlib_unavailable_reason",
    "face_loss_weights",
    "face_training_step",
    "feather_mask",
    "find_landmark_model",
    "find_model_file",
    "hybrid_unavailable_reason",
    "inner_mask",
    "landmarks68_to_5",
    "match_channel",
    "match_histograms",
    "paste_back",
    "refine_faces",
    "resolve_backend",
    "similarity_matrix",
    "template_points",
    "unwarp",
    "warp_affine",
]
