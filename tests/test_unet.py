"""Scratch detector: the U-Net (architecture, sizes, input convention), its losses and its metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage, stats

from oldphoto_bench.imageio import to_tensor
from oldphoto_bench.losses import ScratchLoss, bce_loss, focal_loss, soft_dice_loss
from oldphoto_bench.models import NETWORKS, ScratchUNet, to_detector_input
from oldphoto_bench.models.unet import BlurDownsample
from oldphoto_bench.seeding import numpy_rng, torch_generator
from oldphoto_bench.segmentation_metrics import (
    MaskMetrics,
    confusion,
    f1_score,
    iou_score,
    precision_recall,
    roc_auc,
    segmentation_report,
)

# --- network --------------------------------------------------------------------------------------------


def expected_parameter_count(cin: int, cout: int, widths: list[int], convs: int = 2) -> int:
    """Parameters of the architecture as the module docstring describes it (conv weights + biases, BN scale +
    shift), counted level by level."""
    conv = lambda a, b, k: a * b * k * k + b  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    block = lambda a, b: sum(conv(a if i == 0 else b, b, 3) + bn(b) for i in range(convs))  # noqa: E731
    n = conv(cin, widths[0], 7) + conv(widths[0], cout, 3)
    for c, c_next in itertools.pairwise(widths):
        n += conv(c, c, 3) + bn(c) + block(c, c_next)  # down: conv-norm-act + blur (no weights) + block
        n += conv(c_next, c, 3) + block(2 * c, c)  # up: upsample-conv + block on the concat
    return n


def test_released_defaults():
    m = ScratchUNet()
    assert m.widths == [64, 128, 256, 512, 1024] and m.multiple == 16
    n = sum(p.numel() for p in m.parameters())
    assert n == expected_parameter_count(1, 1, [64, 128, 256, 512, 1024])
    assert sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules()) == 4 * (1 + 2) + 4 * 2
    assert all(x.negative_slope == 0.2 for x in m.modules() if isinstance(x, torch.nn.LeakyReLU))
    assert sum(isinstance(x, torch.nn.Upsample) and x.mode == "bilinear" for x in m.modules()) == 4


def test_widths_configurable_and_capped():
    m = ScratchUNet(base_channels=8, depth=3, max_channels=16)
    assert m.widths == [8, 16, 16, 16]
    assert sum(p.numel() for p in m.parameters()) == expected_parameter_count(1, 1, [8, 16, 16, 16])
    assert NETWORKS.build({"type": "scratch_unet", "base_channels": 8, "depth": 2}).widths == [8, 16, 32]


@pytest.mark.parametrize("kwargs", [{}, {"up": "transpose"}, {"norm": "instance"}, {"norm": "none"},
                                    {"antialias": False}, {"in_channels": 3, "out_channels": 2}])
def test_shapes_any_size(kwargs):
    m = ScratchUNet(base_channels=8, depth=3, **kwargs).eval()
    cin, cout = kwargs.get("in_channels", 1), kwargs.get("out_channels", 1)
    assert m(torch.rand(2, cin, 32, 48)).shape == (2, cout, 32, 48)
    for h, w in ((257, 131), (1, 1), (5, 3), (17, 16)):
        with torch.no_grad():
            p = m.predict_proba(torch.rand(1, cin, h, w))
        assert p.shape == (1, cout, h, w) and float(p.min()) >= 0 and float(p.max()) <= 1


def test_forward_rejects_bad_sizes_and_names():
    m = ScratchUNet(base_channels=8, depth=2)
    with pytest.raises(ValueError, match="multiples of 4"):
        m(torch.rand(1, 1, 30, 32))
    with pytest.raises(ValueError, match="forward_any_size"):
        m(torch.rand(1, 1, 4, 8))
    with pytest.raises(KeyError, match="bilinear, transpose"):
        ScratchUNet(up="nearest")
    with pytest.raises(KeyError, match="valid names"):
        ScratchUNet(norm="group")


def test_forward_any_size_is_reflect_pad_then_crop():
    """Against a numpy reflection pad (numpy ``reflect`` = torch ``reflect``: the edge is not repeated)."""
    m = ScratchUNet(base_channels=8, depth=2).eval()
    x = torch.rand(1, 1, 29, 35, generator=torch_generator(0))
    padded = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (0, 3), (0, 1)), mode="reflect"))
    with torch.no_grad():
        assert torch.allclose(m.forward_any_size(x), m(padded)[..., :29, :35], atol=1e-6)
        assert torch.allclose(m.predict_proba(x), torch.sigmoid(m(padded)[..., :29, :35]), atol=1e-6)


def test_blur_downsample_matches_scipy():
    x = torch.rand(2, 3, 13, 10, generator=torch_generator(1))
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    # scipy "mirror" reflects about the edge pixel without repeating it, like torch "reflect"
    ref = np.stack([[ndimage.correlate(c, k, mode="mirror")[::2, ::2] for c in img] for img in x.double().numpy()])
    out = BlurDownsample()(x)
    assert out.shape == (2, 3, 7, 5)
    assert np.allclose(out.numpy(), ref, atol=1e-6)


def test_detector_input_is_pil_luma_and_network_normalises_to_minus1_1():
    rgb = numpy_rng(2).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    pil_l = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255.0
    y = to_detector_input(to_tensor(rgb))
    assert y.shape == (1, 1, 9, 7)
    assert np.abs(y[0, 0].numpy() - pil_l).max() <= 1.0 / 255.0 + 1e-6  # PIL rounds to integers
    gray = torch.rand(1, 1, 4, 4)
    assert to_detector_input(gray) is gray
    with pytest.raises(ValueError):
        to_detector_input(torch.rand(1, 2, 4, 4))
    # an RGB detector gets the photo as it is, a gray photo repeated over three channels
    x3 = to_tensor(rgb)
    assert torch.equal(to_detector_input(x3, 3), x3)
    assert torch.equal(to_detector_input(gray, 3), gray.repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match="1 \\(luma\\) or 3"):
        to_detector_input(x3, 2)
    assert ScratchUNet(in_channels=3, base_channels=8, depth=2).in_channels == 3
    a = ScratchUNet(base_channels=8, depth=2, init_seed=3).eval()
    b = ScratchUNet(base_channels=8, depth=2, init_seed=3, normalize_input=False).eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(a(x), b(2 * x - 1), atol=1e-6)


def test_seeded_init_is_deterministic():
    a, b, c = (ScratchUNet(base_channels=8, depth=2, init_seed=s) for s in (7, 7, 8))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["stem.1.weight"], sc["stem.1.weight"])


def test_learns_a_line_mask():
    """A few Adam steps on one image with a dark line: the combined loss falls below a fifth and the
    detection F1 at 0.5 rises above 0.9."""
    g = torch_generator(0)
    img = 0.6 + 0.1 * torch.rand(4, 1, 32, 32, generator=g)
    mask = torch.zeros_like(img)
    for i in range(4):
        mask[i, 0, 4 + 6 * i: 6 + 6 * i, :] = 1.0  # a 2-pixel horizontal scratch at a different row
    img = img * (1 - 0.8 * mask)
    m = ScratchUNet(base_channels=8, depth=2, init_seed=1)
    loss_fn = ScratchLoss("focal", dice_weight=1.0)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = loss_fn(m(img), mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.2 * losses[0]
    m.eval()
    with torch.no_grad():
        assert f1_score(m.predict_proba(img), mask) > 0.9


# --- losses ---------------------------------------------------------------------------------------------

def _logits_targets(seed=0, shape=(2, 1, 8, 9)):
    g = torch_generator(seed)
    return 4 * torch.randn(shape, generator=g), (torch.rand(shape, generator=g) > 0.7).float()


def test_bce_matches_torch():
    x, t = _logits_targets()
    assert torch.allclose(bce_loss(x, t), F.binary_cross_entropy_with_logits(x, t))
    ref = F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor(5.0), reduction="sum")
    assert torch.allclose(bce_loss(x, t, pos_weight=5.0, reduction="sum"), ref)


def test_focal_closed_forms():
    x, t = _logits_targets(1)
    assert torch.allclose(focal_loss(x, t, gamma=0.0, alpha=None), F.binary_cross_entropy_with_logits(x, t))
    alpha_t = 0.25 * t + 0.75 * (1 - t)
    assert torch.allclose(focal_loss(x, t, gamma=0.0, alpha=0.25),
                          F.binary_cross_entropy_with_logits(x, t, weight=alpha_t))
    # gamma = 2 in float64 from probabilities: -alpha_t (1 - p_t)^2 log p_t
    p = 1.0 / (1.0 + np.exp(-x.double().numpy()))
    tn = t.numpy()
    pt = np.where(tn > 0.5, p, 1 - p)
    ref = np.mean(-np.where(tn > 0.5, 0.25, 0.75) * (1 - pt) ** 2 * np.log(pt))
    assert abs(float(focal_loss(x, t)) - ref) < 1e-5
    # pos_weight: with binary targets, the positives' share is scaled
    w = np.where(tn > 0.5, 3.0, 1.0)
    ref_w = np.mean(-w * np.where(tn > 0.5, 0.25, 0.75) * (1 - pt) ** 2 * np.log(pt))
    assert abs(float(focal_loss(x, t, pos_weight=3.0)) - ref_w) < 1e-5


def test_focal_confident_predictions():
    x = torch.tensor([60.0, -60.0, 60.0, -60.0])
    t = torch.tensor([1.0, 0.0, 0.0, 1.0])
    fl = focal_loss(x, t, reduction="none", alpha=None)
    assert torch.isfinite(fl).all()
    assert float(fl[:2].max()) < 1e-20  # right and confident: (1 - p_t)^2 ~ e^-120
    assert torch.allclose(fl[2:], torch.tensor([60.0, 60.0]), rtol=1e-4)  # wrong and confident: ~|logit|
    assert (focal_loss(*_logits_targets(2), reduction="none") <= bce_loss(*_logits_targets(2), reduction="none")).all()


def test_soft_dice_closed_forms():
    a = torch.zeros(1, 1, 6, 6)
    a[..., :2, :] = 1  # 12 pixels
    b = torch.zeros(1, 1, 6, 6)
    b[..., 4:, :] = 1  # 12 pixels, disjoint
    assert float(soft_dice_loss(a, a)) == pytest.approx(0.0, abs=1e-7)
    assert float(soft_dice_loss(a, b, smooth=1.0)) == pytest.approx(1 - 1 / 25)
    assert float(soft_dice_loss(torch.zeros_like(a), torch.zeros_like(a))) == pytest.approx(0.0)
    half = torch.full_like(a, 0.5)  # p = 0.5 everywhere: 1 - (2 * 6) / (18 + 12), smooth 0
    assert float(soft_dice_loss(half, a, smooth=0.0)) == pytest.approx(1 - 12 / 30)
    batch_p, batch_t = torch.cat([a, half]), torch.cat([a, a])
    per = soft_dice_loss(batch_p, batch_t, smooth=0.0, reduction="none")
    assert torch.allclose(per, torch.tensor([0.0, 1 - 12 / 30]))
    pooled = 1 - 2 * (12 + 6) / ((12 + 18) + 24)
    assert float(soft_dice_loss(batch_p, batch_t, smooth=0.0, per_image=False)) == pytest.approx(pooled)


def test_scratch_loss_combines_terms():
    x, t = _logits_targets(3)
    x.requires_grad_(True)
    terms = ScratchLoss("focal", dice_weight=0.5).terms(x, t)
    assert set(terms) == {"focal", "dice", "total"}
    expected = focal_loss(x, t) + 0.5 * soft_dice_loss(torch.sigmoid(x), t)
    assert torch.allclose(terms["total"], expected)
    terms["total"].backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    bce_only = ScratchLoss("bce", dice_weight=0.0, pos_weight=2.0)
    assert torch.allclose(bce_only(x, t), bce_loss(x, t, pos_weight=2.0))
    with pytest.raises(KeyError, match="bce, focal"):
        ScratchLoss("dice")


# --- metrics --------------------------------------------------------------------------------------------

def test_confusion_by_hand():
    pred = np.array([0.9, 0.8, 0.1, 0.2, 0.6])
    true = np.array([1, 0, 1, 0, 1])
    c = confusion(pred, true, threshold=0.5)  # predicted positive: 0, 1, 4
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 1)
    assert precision_recall(pred, true) == pytest.approx((2 / 3, 2 / 3))
    assert f1_score(pred, true) == pytest.approx(2 / 3)
    assert iou_score(pred, true) == pytest.approx(2 / 4)
    assert f1_score(pred, true, threshold=0.85) == pytest.approx(2 * 1 / (2 + 0 + 2))
    empty = np.zeros(10)
    assert f1_score(empty, empty) == 1.0 and iou_score(empty, empty) == 1.0  # nothing to find, nothing found
    assert f1_score(np.ones(10), empty) == 0.0


def test_f1_iou_identities_and_dice():
    g = torch_generator(5)
    s, t = torch.rand(3, 1, 20, 20, generator=g), torch.rand(3, 1, 20, 20, generator=g) > 0.8
    p, r = precision_recall(s, t, 0.6)
    f1 = f1_score(s, t, 0.6)
    assert f1 == pytest.approx(2 * p * r / (p + r))
    assert iou_score(s, t, 0.6) == pytest.approx(f1 / (2 - f1))
    hard = (s >= 0.6).float()
    assert f1 == pytest.approx(1 - float(soft_dice_loss(hard, t.float(), smooth=0.0, per_image=False)))


def brute_force_auc(s: np.ndarray, t: np.ndarray) -> float:
    pos, neg = s[t], s[~t]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_against_pairwise_count_and_mann_whitney(seed):
    rng = numpy_rng(seed)
    t = rng.random(300) < 0.3
    s = rng.integers(0, 8, 300) + 2.0 * t  # integer scores: many ties
    auc = roc_auc(s, t)
    assert auc == pytest.approx(brute_force_auc(s, t), abs=1e-12)
    u = stats.mannwhitneyu(s[t], s[~t]).statistic
    assert auc == pytest.approx(u / (t.sum() * (~t).sum()), abs=1e-12)


def test_auc_edge_cases():
    t = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), t) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), t) == 0.0
    assert roc_auc(np.full(4, 0.3), t) == 0.5
    assert np.isnan(roc_auc(numpy_rng(0).random(4), np.zeros(4)))


def test_mask_metrics_pools_pixels():
    g = torch_generator(6)
    s = torch.rand(4, 1, 16, 16, generator=g)
    t = (torch.rand(4, 1, 16, 16, generator=g) + 0.3 * s) > 0.9
    acc = MaskMetrics(threshold=0.4)
    for i in range(4):
        acc.update(s[i], t[i])
    pooled = acc.compute()
    whole = segmentation_report(s, t, threshold=0.4)
    assert pooled == pytest.approx(whole)
    assert pooled["pixels"] == 4 * 256 and pooled["auc"] == pytest.approx(brute_force_auc(s.numpy().ravel(),
                                                                                          t.numpy().ravel()))
