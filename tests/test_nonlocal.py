"""Partial nonlocal block: gathered/chunked attention against the dense masked-softmax reference."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from oldphoto_bench.models import PartialNonLocal, dense_partial_nonlocal_reference, latent_valid_from_mask
from oldphoto_bench.seeding import torch_generator

REPO = Path(__file__).resolve().parents[1]


def trained_block(channels=16, inter=8, seed=0, **kw) -> PartialNonLocal:
    """A block whose W (zero at init) and projections are randomised, so attention shows in the output."""
    block = PartialNonLocal(channels, inter, n_res_blocks=1, init_seed=seed, **kw)
    g = torch_generator(seed + 1)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return block


def sample_inputs(n=3, c=16, h=9, w=7, seed=0, invalid_fraction=0.3):
    g = torch_generator(seed)
    x = torch.randn(n, c, h, w, generator=g)
    valid = torch.rand(n, 1, h, w, generator=g) > invalid_fraction
    return x, valid


def test_gathered_equals_dense_reference():
    block = trained_block()
    x, valid = sample_inputs()
    valid[1] = False  # an image with no valid cell
    valid[2] = True  # an image with nothing to fill
    ours = block.fuse(x, valid)
    ref = dense_partial_nonlocal_reference(block, x, valid)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours[1], x[1]) and torch.equal(ours[2], x[2])
    assert not torch.allclose(ours[0], x[0])  # the test is not vacuous: invalid cells did change


@pytest.mark.parametrize("chunk", [1, 3, 7, 10_000])
def test_chunked_equals_dense(chunk):
    block = trained_block(query_chunk=chunk)
    x, valid = sample_inputs(n=2, h=8, w=8, invalid_fraction=0.5)
    torch.testing.assert_close(block.fuse(x, valid), dense_partial_nonlocal_reference(block, x, valid),
                               rtol=1e-5, atol=1e-5)


def test_forward_equals_dense_then_residual_blocks():
    block = trained_block()
    x, valid = sample_inputs(seed=3)
    torch.testing.assert_close(block(x, valid), block.res_blocks(dense_partial_nonlocal_reference(block, x, valid)),
                               rtol=1e-5, atol=1e-5)


def test_gradients_match_dense_reference():
    # float64: the softmax of the randomised block is peaked, so float32 gradients differ by rounding alone
    block = trained_block().double()
    x, valid = sample_inputs(n=2, seed=4)
    x = x.double()
    grads = []
    for fn in (block.fuse, lambda a, v: dense_partial_nonlocal_reference(block, a, v)):
        xr = x.clone().requires_grad_(True)
        block.zero_grad()
        (fn(xr, valid) ** 2).sum().backward()
        grads.append([xr.grad.clone(), block.theta.weight.grad.clone(), block.W.weight.grad.clone()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_masked_keys_get_exactly_zero_weight_and_rows_sum_to_one():
    block = trained_block()
    x, valid = sample_inputs(n=1, seed=5)
    _, attn = dense_partial_nonlocal_reference(block, x, valid, return_attention=True)
    invalid_keys = ~valid.reshape(-1)
    assert invalid_keys.any()
    assert torch.all(attn[0][:, invalid_keys] == 0)
    torch.testing.assert_close(attn[0].sum(dim=1), torch.ones(attn.shape[1]))
    # the notebook helper gives the same rows
    cells = [(0, 0), (4, 3), (8, 6)]
    maps = block.attention_map(x, valid, cells)
    rows = torch.tensor([r * 7 + c for r, c in cells])
    torch.testing.assert_close(maps.reshape(3, -1), attn[0][rows], rtol=1e-5, atol=1e-6)
    assert torch.all(maps[:, ~valid[0, 0]] == 0)


def test_fast_path_ignores_masked_keys():
    """Changing an invalid cell j changes no other invalid cell's output: j gets no attention weight."""
    block = trained_block()
    x, valid = sample_inputs(n=1, seed=6)
    inv = (~valid.reshape(-1)).nonzero().squeeze(1)
    j, others = inv[0], inv[1:]
    x2 = x.clone()
    x2.reshape(16, -1)[:, j] += 100.0
    a = block.fuse(x, valid).reshape(16, -1)
    b = block.fuse(x2, valid).reshape(16, -1)
    assert torch.equal(a[:, others], b[:, others])
    assert not torch.equal(a[:, j], b[:, j])


def test_valid_cells_pass_through_bit_exact():
    block = trained_block()
    x, valid = sample_inputs(seed=7)
    fused = block.fuse(x, valid)
    v = valid.expand_as(x)
    assert torch.equal(fused[v], x[v])


def test_identity_at_init():
    x, valid = sample_inputs(seed=8)
    gated = PartialNonLocal(16, 8, n_res_blocks=2, init_seed=1)
    assert torch.equal(gated.W.weight, torch.zeros_like(gated.W.weight))
    assert torch.equal(gated(x, valid), x)  # W = 0 and residual gates = 0: the whole block
    released_style = PartialNonLocal(16, 8, n_res_blocks=2, res_gate_init=None, init_seed=1)
    assert torch.equal(released_style.fuse(x, valid), x)  # W = 0: the fusion stage
    assert not torch.allclose(released_style(x, valid), x)  # ungated residual blocks are not the identity


def test_no_valid_cells_returns_input_and_empty_attention():
    block = trained_block()
    x, _ = sample_inputs(n=1, seed=9)
    valid = torch.zeros(1, 1, 9, 7, dtype=torch.bool)
    assert torch.equal(block.fuse(x, valid), x)
    assert torch.equal(block.fuse(x, None), x)  # None = all valid: nothing to fill
    assert torch.all(block.attention_map(x, valid, [(1, 1)]) == 0)


def test_float_validity_and_bad_shapes():
    block = trained_block()
    x, valid = sample_inputs(seed=10)
    assert torch.equal(block.fuse(x, valid.float()), block.fuse(x, valid))
    with pytest.raises(ValueError, match="valid must be"):
        block.fuse(x, valid[..., :-1])
    with pytest.raises(ValueError, match="x must be"):
        block.fuse(x[:, :8], valid)


def test_latent_valid_from_mask_matches_patch_any():
    g = torch_generator(11)
    mask = torch.rand(2, 1, 32, 24, generator=g) > 0.97
    valid = latent_valid_from_mask(mask, 4)
    ref = ~mask.numpy().reshape(2, 1, 8, 4, 6, 4).any(axis=(3, 5))
    assert valid.dtype == torch.bool and valid.shape == (2, 1, 8, 6)
    np.testing.assert_array_equal(valid.numpy(), ref)
    assert (~ref).any() and ref.any()


MEMORY_PROBE = textwrap.dedent("""
    import torch
    from oldphoto_bench.models import PartialNonLocal
    from oldphoto_bench.seeding import torch_generator

    def hwm_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    torch.set_num_threads(1)
    g = torch_generator(0)
    block = PartialNonLocal(8, 8, n_res_blocks=0)
    x = torch.randn(1, 8, 128, 128, generator=g)
    valid = torch.rand(1, 1, 128, 128, generator=g) > 0.5
    with torch.no_grad():
        block.fuse(x[:, :, :8, :8], valid[:, :, :8, :8])  # warm up allocators and kernels
        before = hwm_mib()
        block.fuse(x, valid)
    print(hwm_mib() - before)
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux) for peak RSS")
def test_peak_memory_is_far_below_the_score_matrix():
    """128^2 cells, half invalid: the 8192 x 8192 valid-key score block alone would be 256 MiB."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    growth_mib = float(out.stdout.strip().splitlines()[-1])
    assert growth_mib < 64, f"peak RSS grew by {growth_mib:.0f} MiB"


def test_every_parameter_gets_a_gradient_even_when_nothing_is_filled():
    """DistributedDataParallel needs every parameter used; an unscratched batch must not leave any out."""
    block = trained_block()
    x, _ = sample_inputs(n=2, seed=12)
    out = block(x, None)
    out.sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None, name
    assert torch.equal(block.theta.weight.grad, torch.zeros_like(block.theta.weight))
    assert torch.equal(block.fuse(x, None), x)
