"""``edge_contrast_ratio``: against a dense reference (scipy's Gaussian and Sobel), closed forms, and the
property it exists for (grain removal barely moves it, the all-pixel sharpness ratio falls)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from oldphoto_bench.metrics import edge_contrast_ratio, gradient_sharpness
from oldphoto_bench.seeding import torch_generator


def _scene(seed: int = 0, size: int = 64) -> torch.Tensor:
    """Smooth random shapes with sharp edges: a few rectangles of random gray levels on a ramp."""
    gen = np.random.default_rng(seed)
    y = np.tile(np.linspace(0.2, 0.4, size), (size, 1))
    for _ in range(6):
        r0, c0 = gen.integers(0, size - 16, 2)
        h, w = gen.integers(8, 24, 2)
        y[r0:r0 + h, c0:c0 + w] = gen.uniform(0.1, 0.9)
    return torch.from_numpy(np.repeat(y[None, None], 3, axis=1)).float()


def _reference(restored: np.ndarray, reference: np.ndarray, sigma: float, top: float) -> float:
    """The definition written out with scipy on one gray image (luma = the gray level; scipy's "mirror" is
    torch's "reflect")."""
    def grad(y):
        g = ndimage.gaussian_filter(y, sigma, mode="mirror", truncate=np.ceil(3 * sigma) / sigma)
        gx = ndimage.sobel(g, axis=1, mode="mirror")[1:-1, 1:-1] / 8
        gy = ndimage.sobel(g, axis=0, mode="mirror")[1:-1, 1:-1] / 8
        return np.hypot(gx, gy).ravel()
    go, gr = grad(restored), grad(reference)
    e = gr >= np.quantile(gr, 1 - top)
    return float(go[e].sum() / gr[e].sum())


@pytest.mark.parametrize("sigma,top", [(1.0, 0.05), (2.0, 0.1), (0.7, 0.3)])
def test_matches_a_scipy_reference(sigma, top):
    ref = _scene(1)
    out = (ref + 0.05 * torch.randn(ref.shape, generator=torch_generator(2))).clamp(0, 1)
    out[:, 1:] = out[:, :1]  # gray, so the luma is the channel itself
    got = float(edge_contrast_ratio(out, ref, sigma=sigma, top=top)[0])
    want = _reference(out[0, 0].double().numpy(), ref[0, 0].double().numpy(), sigma, top)
    assert got == pytest.approx(want, rel=1e-9)


def test_closed_forms_identity_and_contrast_scale():
    ref = _scene(3).repeat(2, 1, 1, 1)
    torch.testing.assert_close(edge_contrast_ratio(ref, ref), torch.ones(2, dtype=torch.float64))
    for k in (0.5, 1.2):
        got = edge_contrast_ratio(k * ref + 0.05, ref)
        torch.testing.assert_close(got, torch.full((2,), k, dtype=torch.float64), rtol=1e-5, atol=1e-6)


def test_blur_lowers_it_and_grain_removal_barely_does():
    clean = _scene(4, 96)
    blurred = torch.from_numpy(ndimage.gaussian_filter(clean.numpy(), (0, 0, 2, 2))).float()
    assert float(edge_contrast_ratio(blurred, clean)[0]) < 0.75
    grainy = (clean + 0.06 * torch.randn(clean.shape, generator=torch_generator(5))).clamp(0, 1)
    # the restoration removed the grain exactly: the all-pixel ratio calls it much blurrier, this one does not
    assert float(gradient_sharpness(clean)[0] / gradient_sharpness(grainy)[0]) < 0.6
    assert float(edge_contrast_ratio(clean, grainy)[0]) > 0.9


def test_excluded_pixels_leave_the_edge_set():
    ref = _scene(6, 64)
    out = ref.clone()
    out[..., :, 32:] = 0.5 * out[..., :, 32:] + 0.25  # right half at half the contrast
    right = torch.zeros(1, 1, 64, 64)
    right[..., :, 30:] = 1.0  # the right half and the seam: only left-half edges remain -> exactly 1
    torch.testing.assert_close(edge_contrast_ratio(out, ref, exclude=right), torch.ones(1, dtype=torch.float64))
    # the quantile is taken over the kept pixels: the same as scoring the left part alone
    left = edge_contrast_ratio(out, ref, exclude=right, top=0.2)
    torch.testing.assert_close(left, edge_contrast_ratio(out[..., :31], ref[..., :31], top=0.2), rtol=0.05, atol=0)
    with pytest.raises(ValueError, match="no pixel"):
        edge_contrast_ratio(out, ref, exclude=torch.ones(1, 1, 64, 64))
    with pytest.raises(ValueError, match="exclude must be"):
        edge_contrast_ratio(out, ref, exclude=right[..., :10])


def test_bad_inputs():
    a = torch.rand(1, 3, 8, 8, generator=torch_generator(0))
    with pytest.raises(ValueError, match="one shape"):
        edge_contrast_ratio(a, a[..., :7])
    with pytest.raises(ValueError, match="sigma"):
        edge_contrast_ratio(a, a, sigma=0.0)
    with pytest.raises(ValueError, match="top"):
        edge_contrast_ratio(a, a, top=0.0)
    with pytest.raises(ValueError, match="3 x 3"):
        edge_contrast_ratio(a[..., :2, :], a[..., :2, :])
