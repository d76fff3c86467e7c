"""Five-point face alignment: a least-squares similarity transform to a fixed template, and affine warps.

Coordinates: x right, y down, integer coordinates at pixel centres (dlib's and OpenCV's convention). A
*matrix* is a ``(3, 3)`` float64 numpy array mapping homogeneous image points to crop points,
``[u, v, 1]^T = M [x, y, 1]^T``; its inverse maps the crop back.

Template: the released code's five points (Face_Detection/align_warp_back_multiple_dlib.py) on a 256 grid,
``(196, 226), (316, 226), (256, 286), (220, 360.4), (292, 360.4)``, i.e. ``p / 256 - 1`` in [-1, 1]
coordinates, multiplied by ``face_scale = 1.3`` about the crop centre as the released code does
(``target_pts = (std_pts * 1.3 + 1) / 2 * 256``). Note the direction: scaling the *template* by 1.3 moves
the points outwards, so the face is drawn 1.3x larger than in the bare template (eye distance 78 px of 256
instead of 60) and the crop shows less background; ``face_scale < 1`` would show more.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Released template, in [-1, 1] crop coordinates: left eye, right eye, nose tip, left / right mouth corner.
TEMPLATE_5 = np.array([[196.0, 226.0], [316.0, 226.0], [256.0, 286.0], [220.0, 360.4], [292.0, 360.4]]) / 256.0 - 1.0
FACE_SCALE = 1.3  # released code's target_face_scale
FACE_SIZE = 256


def template_points(size: int = FACE_SIZE, face_scale: float = FACE_SCALE) -> np.ndarray:
    """``(5, 2)`` template points in a ``size x size`` crop: ``c + TEMPLATE_5 * face_scale * size / 2`` with the
    crop centre ``c = (size - 1) / 2`` (pixel-centre coordinates)."""
    return (size - 1) / 2.0 + TEMPLATE_5 * face_scale * size / 2.0


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) with ``dst ~ M src``.

    Writing points as complex numbers ``z = x + iy``, a similarity is ``w = a z + b``; minimising
    ``sum |a z_k + b - w_k|^2`` gives ``a = sum conj(z_k - zbar)(w_k - wbar) / sum |z_k - zbar|^2`` and
    ``b = wbar - a zbar`` (the 2-D case of Umeyama 1991). Returns the ``(3, 3)`` matrix.
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (K, 2) point sets with K >= 2, got {src.shape} and {dst.shape}")
    z, w = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    zc, wc = z - z.mean(), w - w.mean()
    denom = float(np.sum(np.abs(zc) ** 2))
    if denom <= 1e-12:
        raise ValueError("source points coincide; no similarity transform is defined")
    a = np.sum(np.conj(zc) * wc) / denom
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag], [0.0, 0.0, 1.0]])


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(K, 2)`` points mapped by the ``(3, 3)`` matrix."""
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:2, :2].T + matrix[:2, 2]


def warp_affine(image: torch.Tensor, matrix: np.ndarray, out_size: tuple[int, int],
                padding: str = "zeros") -> torch.Tensor:
    """Bilinear warp: output pixel ``(x, y)`` takes ``image`` at ``M^-1 [x, y, 1]`` (M maps image -> output).

    ``image``: ``(N, C, H, W)``; ``out_size``: ``(height, width)``; ``padding``: ``"zeros"``, ``"border"`` or
    ``"reflection"`` for samples outside the image (grid_sample's modes). Source pixel centre ``x`` sits at
    grid_sample's normalised ``(2x + 1) / W - 1`` (``align_corners=False``).
    """
    if image.dim() != 4:
        raise ValueError(f"warp_affine takes (N, C, H, W), got {tuple(image.shape)}")
    h_in, w_in = image.shape[-2:]
    h, w = out_size
    inv = np.linalg.inv(np.asarray(matrix, dtype=np.float64))
    # Normalised source coordinates as an affine function of the output pixel indices, built in float64.
    norm = np.array([[2.0 / w_in, 0.0, 1.0 / w_in - 1.0], [0.0, 2.0 / h_in, 1.0 / h_in - 1.0], [0, 0, 1]])
    a = torch.as_tensor((norm @ inv)[:2], dtype=torch.float64)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    grid = torch.stack([a[0, 0] * xs + a[0, 1] * ys + a[0, 2], a[1, 0] * xs + a[1, 1] * ys + a[1, 2]], dim=-1)
    grid = grid.to(device=image.device, dtype=image.dtype).expand(image.shape[0], h, w, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def alignment_matrix(landmarks5: np.ndarray, size: int = FACE_SIZE, face_scale: float = FACE_SCALE) -> np.ndarray:
    """The similarity taking the five image points onto :func:`template_points` (``(3, 3)``, image -> crop)."""
    return similarity_matrix(landmarks5, template_points(size, face_scale))


def align_face(image: torch.Tensor, landmarks5: np.ndarray, size: int = FACE_SIZE, face_scale: float = FACE_SCALE,
               padding: str = "reflection") -> tuple[torch.Tensor, np.ndarray]:
    """Aligned crop ``(N, C, size, size)`` and its matrix (image -> crop). Parts of the crop outside the
    image are filled by ``padding`` (reflection by default, so the network sees no black borders)."""
    matrix = alignment_matrix(landmarks5, size, face_scale)
    return warp_affine(image, matrix, (size, size), padding), matrix


def crop_footprint(matrix: np.ndarray, size: int, image_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Integer window ``(x0, y0, x1, y1)`` (exclusive ends) of the image covered by the crop, clipped to the
    image and grown by one pixel for bilinear support; None when the crop lies outside the image."""
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    pts = apply_matrix(np.linalg.inv(matrix), corners)
    h, w = image_hw
    x0, y0 = max(0, int(np.floor(pts[:, 0].min())) - 1), max(0, int(np.floor(pts[:, 1].min())) - 1)
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max())) + 2), min(h, int(np.ceil(pts[:, 1].max())) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def unwarp(crop: torch.Tensor, matrix: np.ndarray, window: tuple[int, int, int, int]) -> torch.Tensor:
    """The crop warped back into the image window ``(x0, y0, x1, y1)``: ``(N, C, y1 - y0, x1 - x0)``, zero
    where the window lies outside the crop. Window pixel ``(i, j)`` is image pixel ``(x0 + j, y0 + i)``."""
    x0, y0, x1, y1 = window
    to_window = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ np.linalg.inv(matrix)
    return warp_affine(crop, to_window, (y1 - y0, x1 - x0), padding="zeros")
