"""Alignment (similarity fit, warps, inverse), histogram matching, feathered paste-back, and refine_faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data, exposure, transform

from oldphoto_bench.faces import (
    FACE_SCALE,
    TEMPLATE_5,
    CascadeDetector,
    SPADEFaceGenerator,
    align_face,
    apply_matrix,
    crop_footprint,
    detect_faces,
    feather_mask,
    match_channel,
    match_histograms,
    paste_back,
    refine_faces,
    similarity_matrix,
    template_points,
    unwarp,
    warp_affine,
)
from oldphoto_bench.imageio import to_tensor
from oldphoto_bench.seeding import numpy_rng, torch_generator


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return to_tensor(data.astronaut())


@pytest.fixture(scope="module")
def cascade() -> CascadeDetector:
    return CascadeDetector()


@pytest.fixture(scope="module")
def astronaut_points(astronaut, cascade) -> np.ndarray:
    return detect_faces(astronaut, detector=cascade)[0].landmarks5


# ---------------------------------------------------------------------------------------------- alignment


def test_similarity_matches_skimage():
    rng = numpy_rng(0)
    src = rng.uniform(0, 500, (5, 2))
    dst = rng.uniform(0, 256, (5, 2))  # not an exact similarity: a least-squares fit
    if hasattr(transform.SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        ref = transform.SimilarityTransform.from_estimate(src, dst)
    else:
        ref = transform.SimilarityTransform()
        assert ref.estimate(src, dst)
    np.testing.assert_allclose(similarity_matrix(src, dst), ref.params, atol=1e-9)


def test_similarity_recovers_an_exact_transform():
    theta, s, t = 0.3, 1.7, np.array([12.0, -40.0])
    rot = s * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    src = numpy_rng(1).uniform(-50, 50, (5, 2))
    m = similarity_matrix(src, src @ rot.T + t)
    np.testing.assert_allclose(m[:2, :2], rot, atol=1e-12)
    np.testing.assert_allclose(m[:2, 2], t, atol=1e-10)
    with pytest.raises(ValueError):
        similarity_matrix(np.zeros((5, 2)), src)


def test_template_geometry():
    size = 256
    pts = template_points(size)
    c = (size - 1) / 2
    assert np.allclose(pts[0, 0] + pts[1, 0], 2 * c) and np.allclose(pts[3, 0] + pts[4, 0], 2 * c)  # symmetric
    assert pts[2, 0] == pytest.approx(c)
    # released template: eyes 120 px apart on a 512-wide [-1, 1] grid, scaled by 1.3, on a 256 crop -> 78 px
    assert pts[1, 0] - pts[0, 0] == pytest.approx(120 / 512 * FACE_SCALE * size)
    np.testing.assert_allclose(template_points(64), (63 / 2) + TEMPLATE_5 * FACE_SCALE * 32)


def test_warp_affine_matches_skimage_warp():
    rng = numpy_rng(2)
    img = rng.uniform(0, 1, (40, 50, 3)).astype(np.float32)
    m = similarity_matrix(rng.uniform(0, 40, (3, 2)), rng.uniform(0, 30, (3, 2)))
    ours = warp_affine(torch.from_numpy(img).permute(2, 0, 1)[None].double(), m, (30, 35))[0].permute(1, 2, 0)
    # skimage: output (r, c) takes the input at inverse_map((c, r)); order 1 = bilinear, pixel centres at ints
    ref = transform.warp(img.astype(np.float64), transform.AffineTransform(np.linalg.inv(m)), output_shape=(30, 35),
                         order=1, mode="constant", cval=0.0)
    # compare where the source point lies inside the image by at least one pixel (no edge conventions)
    ys, xs = np.mgrid[0:30, 0:35]
    src = apply_matrix(np.linalg.inv(m), np.stack([xs.ravel(), ys.ravel()], 1)).reshape(30, 35, 2)
    inside = (src[..., 0] > 1) & (src[..., 0] < 48) & (src[..., 1] > 1) & (src[..., 1] < 38)
    assert inside.sum() > 50
    np.testing.assert_allclose(ours.numpy()[inside], ref[inside], atol=1e-9)


def test_aligned_points_land_on_the_template(astronaut, astronaut_points):
    crop, m = align_face(astronaut, astronaut_points, size=128)
    assert crop.shape == (1, 3, 128, 128)
    mapped = apply_matrix(m, astronaut_points)
    # cascade points are a scaled copy of a fixed pattern; the fit leaves only the template mismatch
    eye_dist = template_points(128)[1, 0] - template_points(128)[0, 0]
    assert np.abs(mapped - template_points(128)).max() < 0.2 * eye_dist


def test_warp_then_inverse_is_exact_for_a_linear_image():
    """Bilinear interpolation reproduces an affine-linear image exactly, so align + unwarp is the identity."""
    h, w = 120, 160
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    img = torch.stack([xs / w, ys / h, 0.3 * xs / w + 0.5 * ys / h])[None]
    pts = np.array([[70.0, 50.0], [95.0, 52.0], [82.0, 65.0], [72.0, 78.0], [93.0, 79.0]])
    crop, m = align_face(img, pts, size=64, padding="zeros")
    window = crop_footprint(m, 64, (h, w))
    back = unwarp(crop, m, window)
    x0, y0, x1, y1 = window
    inner = unwarp(torch.ones(1, 1, 64, 64, dtype=torch.float64), m, window)[0, 0] > 1 - 1e-9
    assert inner.sum() > 500
    diff = (back - img[..., y0:y1, x0:x1]).abs()[0].amax(0)
    assert diff[inner].max() < 1e-9


def test_warp_then_inverse_is_close_on_the_astronaut_face(astronaut, astronaut_points):
    crop, m = align_face(astronaut, astronaut_points, size=256)
    window = crop_footprint(m, 256, tuple(astronaut.shape[-2:]))
    back = unwarp(crop, m, window)
    x0, y0, x1, y1 = window
    inner = unwarp(torch.ones(1, 1, 256, 256), m, window)[0, 0] > 0.999
    err = (back - astronaut[..., y0:y1, x0:x1]).abs()[0].mean(0)[inner]
    # two bilinear resamplings blur edges slightly (measured: mean 0.006); a half-pixel shift gives 0.013
    assert err.mean() < 0.009
    assert torch.quantile(err, 0.99) < 0.05


# ------------------------------------------------------------------------------------- histogram matching


@pytest.mark.parametrize("levels", [None, 256])
def test_histogram_matching_matches_skimage(levels):
    g = torch_generator(3)
    src = torch.rand(1, 3, 48, 40, generator=g) ** 2
    ref = torch.rand(1, 3, 30, 30, generator=g) * 0.5 + 0.25
    if levels:  # many ties, as in 8-bit images
        src, ref = (src * (levels - 1)).round() / (levels - 1), (ref * (levels - 1)).round() / (levels - 1)
    ours = match_histograms(src.double(), ref.double())[0].permute(1, 2, 0).numpy()
    theirs = exposure.match_histograms(src[0].permute(1, 2, 0).double().numpy(),
                                       ref[0].permute(1, 2, 0).double().numpy(), channel_axis=-1)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_histogram_matching_equal_sizes_gives_the_reference_values():
    g = torch_generator(4)
    src, ref = torch.rand(500, generator=g, dtype=torch.float64), torch.rand(500, generator=g, dtype=torch.float64)
    out = match_channel(src, ref)
    torch.testing.assert_close(torch.sort(out).values, torch.sort(ref).values)
    assert torch.equal(torch.argsort(out), torch.argsort(src))  # order preserved


# ---------------------------------------------------------------------------------------- mask and blend


def test_feather_mask_shape_and_margins():
    m = feather_mask(128, erode=3, feather=2.0)[0, 0]
    assert m.shape == (128, 128) and m.min() == 0 and m.max() == 1
    assert torch.all(m[:3] == 0) and torch.all(m[:, -3:] == 0)
    r = 6  # ceil(3 * sigma)
    assert torch.all(m[3 + 2 * r:-3 - 2 * r, 3 + 2 * r:-3 - 2 * r] == 1)
    row = m[64]
    assert torch.all(row[:64].diff() >= 0) and torch.all(row[64:].diff() <= 0)  # rises, then falls


def test_paste_back_leaves_pixels_outside_the_mask_bit_identical(astronaut, astronaut_points):
    crop, m = align_face(astronaut, astronaut_points, size=128)
    noise = torch.rand(crop.shape, generator=torch_generator(5))
    out, alpha = paste_back(astronaut, noise, m)
    outside = (alpha == 0).expand_as(out)
    assert outside.any() and (alpha > 0).sum() > 2000
    assert torch.equal(out[outside], astronaut[outside])
    assert not torch.equal(out, astronaut)
    full = (alpha == 1).expand_as(out)
    assert full.any()
    assert (out[full] - astronaut[full]).abs().mean() > 0.1  # inside, the noise replaced the face


def test_paste_back_identity_crop_changes_little(astronaut, astronaut_points):
    crop, m = align_face(astronaut, astronaut_points, size=256)
    out, alpha = paste_back(astronaut, crop, m)
    inside = (alpha > 0).expand_as(out)
    assert (out - astronaut).abs()[inside].mean() < 0.01


def test_face_at_the_border(astronaut):
    """A face half outside the image: the crop is padded, only the inside part is pasted."""
    pts = np.array([[-10.0, 200.0], [30.0, 200.0], [10.0, 225.0], [-5.0, 245.0], [25.0, 245.0]])
    crop, m = align_face(astronaut, pts, size=128)
    assert torch.isfinite(crop).all()
    out, alpha = paste_back(astronaut, torch.zeros_like(crop), m)
    assert out.shape == astronaut.shape and alpha[..., :, :40].max() > 0.99
    outside = (alpha == 0).expand_as(out)
    assert torch.equal(out[outside], astronaut[outside])
    far = np.array([[900.0, 900.0], [940.0, 900.0], [920.0, 925.0], [905.0, 945.0], [935.0, 945.0]])
    crop, m = align_face(astronaut, far, size=64)
    out, alpha = paste_back(astronaut, crop, m)
    assert torch.equal(out, astronaut) and alpha.max() == 0


# -------------------------------------------------------------------------------------------- refine_faces


@pytest.fixture(scope="module")
def tiny_enhancer() -> SPADEFaceGenerator:
    return SPADEFaceGenerator(size=64, base_channels=4, max_channels=16, hidden=8)


def test_refine_without_faces_returns_the_image_unchanged(tiny_enhancer, cascade):
    coffee = to_tensor(data.coffee())
    out, report = refine_faces(coffee, tiny_enhancer, detector=cascade)
    assert report == [] and torch.equal(out, coffee)


def test_refine_enhances_and_reports(tiny_enhancer, cascade, astronaut):
    out, report = refine_faces(astronaut, tiny_enhancer, detector=cascade, size=128)
    (entry,) = report
    assert entry["status"] == "enhanced" and len(entry["box"]) == 4 and len(entry["landmarks"]) == 5
    assert out.shape == astronaut.shape and not torch.equal(out, astronaut)
    changed = (out != astronaut).any(1)[0]
    ys, xs = torch.nonzero(changed, as_tuple=True)
    x0, y0, x1, y1 = entry["box"]
    assert x0 - 60 < xs.float().mean() < x1 + 60 and y0 - 60 < ys.float().mean() < y1 + 60  # near the face


def test_refine_skips_small_faces_and_needs_an_enhancer(cascade, astronaut):
    out, report = refine_faces(astronaut, SPADEFaceGenerator(64, 4, 16, hidden=8), detector=cascade, min_face=200)
    assert torch.equal(out, astronaut)
    (entry,) = report
    assert entry["status"] == "skipped" and entry["note"].startswith("skipped: face ")
    assert entry["note"].endswith("px < 200 px")
    out, report = refine_faces(astronaut, None, detector=cascade)
    assert torch.equal(out, astronaut) and report[0]["status"] == "detected"


def test_refine_keeps_a_gray_photo_gray(tiny_enhancer, cascade, astronaut):
    gray = astronaut.mean(1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
    out, report = refine_faces(gray, tiny_enhancer, detector=cascade, size=128)
    assert report and report[0]["status"] == "enhanced" and not torch.equal(out, gray)
    assert (out[:, 0] - out[:, 1]).abs().max() < 1e-6 and (out[:, 1] - out[:, 2]).abs().max() < 1e-6


def test_refine_detects_on_the_fallback_when_the_image_shows_no_face(tiny_enhancer, cascade, astronaut):
    flat = torch.full_like(astronaut, 0.5)  # no face to detect on the image itself
    out, report = refine_faces(flat, tiny_enhancer, detector=cascade, size=128)
    assert report == [] and torch.equal(out, flat)
    out, report = refine_faces(flat, tiny_enhancer, detector=cascade, size=128, fallback=astronaut)
    (entry,) = report
    assert entry["detected_on"] == "fallback" and entry["status"] == "enhanced" and not torch.equal(out, flat)
    direct, _ = refine_faces(astronaut, tiny_enhancer, detector=cascade, size=128, fallback=flat)
    assert _[0]["detected_on"] == "image"  # the fallback is only used when the image shows no face
    with pytest.raises(ValueError, match="shape"):
        refine_faces(flat, tiny_enhancer, detector=cascade, fallback=astronaut[..., :100, :100])
