"""The enhancer at a smaller size than the aligned crop: only its change is resized, the crop's detail stays;
the aligned crop at the face's own scale; the face stage's gradient loss."""

from __future__ import annotations

import torch
from torch import nn

from oldphoto_bench.faces.refine import _enhance
from oldphoto_bench.seeding import torch_generator
from oldphoto_bench.train.face_stage import gradient_l1


class _Shift(nn.Module):
    """A stand-in enhancer at ``size`` px that adds ``delta`` to every pixel."""

    def __init__(self, size: int, delta: float):
        super().__init__()
        self.size, self.delta = size, delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.delta


def test_an_identity_enhancer_keeps_the_crops_detail():
    crop = torch.rand(1, 3, 256, 256, generator=torch_generator(0)) * 0.8 + 0.1  # fine detail at 256 px
    assert torch.allclose(_enhance(_Shift(64, 0.0), crop, "cpu"), crop, atol=1e-6)


def test_the_enhancers_change_is_carried_to_the_crop_size():
    crop = torch.rand(1, 3, 256, 256, generator=torch_generator(1)) * 0.5 + 0.2
    out = _enhance(_Shift(128, 0.1), crop, "cpu")
    assert out.shape == crop.shape
    assert torch.allclose(out, crop + 0.1, atol=1e-5)
    same = _enhance(_Shift(256, 0.1), crop, "cpu")  # same size: the enhancer's output as it is
    assert torch.allclose(same, crop + 0.1, atol=1e-6)


def test_gradient_l1_sees_detail_and_ignores_a_constant_offset():
    x = torch.rand(2, 3, 16, 16, generator=torch_generator(2))
    assert float(gradient_l1(x + 0.2, x)) < 1e-6
    flat = torch.full_like(x, 0.5)
    assert float(gradient_l1(flat, x)) > 0.1


def test_native_crop_size_follows_the_face_scale():
    from oldphoto_bench.faces.align import FACE_SIZE, template_points
    from oldphoto_bench.faces.refine import MAX_CROP, native_crop_size

    points = template_points(FACE_SIZE)  # a face already at the 256 px template's scale
    assert native_crop_size(points) == FACE_SIZE
    assert native_crop_size(points * 2.0 + 7.0) == 2 * FACE_SIZE  # twice as large, anywhere in the photo
    assert native_crop_size(points * 0.5) == FACE_SIZE  # small faces still get the 256 px crop
    assert native_crop_size(points * 10.0) == MAX_CROP
