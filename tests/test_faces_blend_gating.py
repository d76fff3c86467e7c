"""Paste-back with the low-frequency hand-back (exact outside the mask, no colour step in the fade band) and
confidence gating (a face the detector is not sure of is left unchanged)."""

from __future__ import annotations

import pytest
import torch
from skimage import data

from oldphoto_bench.faces import (
    CascadeDetector,
    SPADEFaceGenerator,
    align_face,
    detect_faces,
    paste_back,
    refine_faces,
)
from oldphoto_bench.faces.blend import feather_mask, inner_mask
from oldphoto_bench.faces.hybrid import hybrid_unavailable_reason
from oldphoto_bench.imageio import load_image, to_tensor
from oldphoto_bench.seeding import torch_generator


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return to_tensor(data.astronaut())


@pytest.fixture(scope="module")
def cascade() -> CascadeDetector:
    return CascadeDetector()


@pytest.fixture(scope="module")
def face(astronaut, cascade):
    return detect_faces(astronaut, detector=cascade)[0]


@pytest.fixture(scope="module")
def tiny_enhancer() -> SPADEFaceGenerator:
    torch.manual_seed(0)
    return SPADEFaceGenerator(size=64, base_channels=4, max_channels=16, hidden=8)


@pytest.mark.parametrize("size", [64, 256])
def test_inner_mask_is_zero_wherever_the_blend_fades(size):
    a, keep = feather_mask(size), inner_mask(size)
    assert keep[a < 1].abs().max() == 0
    assert keep.max() == 1 and (keep == 1).sum() > 0.05 * size * size


def test_paste_back_with_reference_is_exact_outside_the_mask(astronaut, face):
    crop, m = align_face(astronaut, face.landmarks5, size=128)
    noise = torch.rand(crop.shape, generator=torch_generator(7))
    out, alpha = paste_back(astronaut, noise, m, reference=crop)
    outside = (alpha == 0).expand_as(out)
    assert outside.any() and (alpha > 0).sum() > 2000
    assert torch.equal(out[outside], astronaut[outside])
    assert (out - astronaut).abs()[(alpha == 1).expand_as(out)].mean() > 0.05
    with pytest.raises(ValueError, match="shape"):
        paste_back(astronaut, noise, m, reference=crop[..., :64, :64])


def test_a_colour_shift_fades_in_inside_the_face_not_at_the_mask_edge(astronaut, face):
    """An 'enhancer' that brightens everything by 0.15: the previous paste-back shows the step along the
    mask's fade band; with the reference the band keeps the surrounding colours and the face centre keeps the
    brightening."""
    crop, m = align_face(astronaut, face.landmarks5, size=128)
    brighter = (crop + 0.15).clamp(0, 1)
    plain, alpha = paste_back(astronaut, brighter, m)
    matched, alpha2 = paste_back(astronaut, brighter, m, reference=crop)
    assert torch.equal(alpha, alpha2)
    band = ((alpha > 0) & (alpha < 1)).expand_as(astronaut)
    assert (plain - astronaut)[band].mean() > 0.04
    assert (matched - astronaut)[band].abs().mean() < 0.1 * (plain - astronaut)[band].mean()
    keep, _ = paste_back(torch.zeros_like(astronaut[:, :1]), inner_mask(128), m)
    centre = (keep > 0.999).expand_as(astronaut) & (astronaut < 0.8)  # unclipped pixels where colours are kept
    assert centre.sum() > 500
    assert (matched - astronaut)[centre].mean() > 0.12


class _FixedScore:
    """A detector stand-in: the cascade's face with a chosen score, and a stated confident_score."""

    name = "fixed"

    def __init__(self, face, score: float, confident_score: float = 0.6):
        self.face, self.score, self.confident_score = face, score, confident_score

    def __call__(self, image):
        f = self.face
        return [type(f)(f.box, f.landmarks5, f.landmarks, self.score, self.name)]


def test_a_face_below_the_detectors_confidence_is_left_unchanged(astronaut, face, tiny_enhancer):
    out, report = refine_faces(astronaut, tiny_enhancer, detector=_FixedScore(face, 0.3), size=128)
    assert torch.equal(out, astronaut)
    (entry,) = report
    assert entry["status"] == "uncertain" and entry["note"] == "left unchanged: detection score 0.30 < 0.6"
    out, report = refine_faces(astronaut, tiny_enhancer, detector=_FixedScore(face, 0.9), size=128)
    assert report[0]["status"] == "enhanced" and not torch.equal(out, astronaut)
    out, report = refine_faces(astronaut, tiny_enhancer, detector=_FixedScore(face, 0.3), size=128, min_score=0.2)
    assert report[0]["status"] == "enhanced" and not torch.equal(out, astronaut)


@pytest.mark.skipif(hybrid_unavailable_reason() is not None, reason="hybrid face backend unavailable")
def test_a_face_cut_by_the_photo_edge_is_left_alone(shared_data, tiny_enhancer):
    """In the many-people selfie of faces/deepface, the face cut in half by the right edge gets a low CNN
    margin: it is reported as uncertain and its pixels are not touched; the whole faces are enhanced."""
    from oldphoto_bench.faces.hybrid import HybridDetector

    image, _ = load_image(shared_data / "faces" / "deepface" / "selfie-many-people.jpg")
    out, report = refine_faces(image, tiny_enhancer, detector=HybridDetector(), size=128)
    statuses = sorted(e["status"] for e in report)
    assert statuses.count("enhanced") >= 3 and statuses.count("uncertain") >= 1
    for e in report:
        if e["status"] == "uncertain":
            x0, y0, x1, y1 = (round(v) for v in e["box"])
            assert x1 > image.shape[-1]  # reaches past the photo's edge
            assert torch.equal(out[..., max(0, y0):y1, max(0, x0):x1], image[..., max(0, y0):y1, max(0, x0):x1])
