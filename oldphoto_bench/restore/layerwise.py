"""Whole-image inference of the instance-normalised networks (VAEs, mapping) in bounded memory, exactly.

Why not tiles: the VAEs and the mapping normalise with InstanceNorm, whose statistics are taken over the whole
image. Run on tiles, each tile would be normalised by its own mean and variance, so a dark tile and a bright
tile would come out with different brightness and contrast, and no cross-fade hides that. (The partial
nonlocal block is global over the latent grid as well.) The released code runs the whole image at once,
which needs several full-resolution activations of 64 channels in memory (3 GiB each for 12 megapixels).

Here the network runs layer by layer over the whole image, as the untiled forward does, but:

* every convolution (and transposed convolution) is computed in horizontal bands of output rows, reading
  the rows it needs plus the halo of its kernel, and its padding (zero, reflect, replicate, also a padding
  layer right before it) is built per band: no padded copy of the input and no framework temporaries of
  full size;
* InstanceNorm statistics (mean, biased variance, in float64) are accumulated over the whole tensor band by
  band, then the tensor is normalised in place; activations run in place;
* residual blocks keep only their input and the two convolution outputs, and add into their input when
  the runner owns it (no reference held further up the call chain keeps a stale copy alive);
* the partial nonlocal fusion gathers the projected keys and values of the valid cells once and queries
  the invalid cells in chunks, writing the filled cells back in place (the same equations as
  :meth:`~oldphoto_bench.models.PartialNonLocal.fuse`).

So the result equals the module's own forward up to float rounding (summation order), whatever the band
size, and the peak memory is a few full-size activations of the widest layer: input, output and one
skip. At the ``paper`` widths that is the mapping's 512-channel latent (3 x 512 x 4 bytes / 16 pixels =
~390 bytes per image pixel), linear in the pixels.

Modules it knows: Sequential, Conv2d, ConvTranspose2d, InstanceNorm2d, the pad layers, ReLU, LeakyReLU,
Sigmoid, Tanh, Identity, and this library's ResidualBlock, PartialNonLocal, MappingNetwork, VAEEncoder,
VAEDecoder. Any other module is called as it is (correct, but not memory-bounded) and named in
:attr:`LayerwiseRunner.fallbacks`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models import MappingNetwork, PartialNonLocal, ResidualBlock, VAEDecoder, VAEEncoder
from ..models.nonlocal_block import dense_partial_nonlocal_reference

DEFAULT_BAND_ELEMENTS = 1 << 24  # floats in one band's temporaries (64 MiB in float32)
ATTENTION_MODES = ("linear", "dense")
_PAD_LAYERS = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d)
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh)


def _source_rows(
    start: int, stop: int, before: int, length: int, mode: str, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``start..stop-1`` of an axis padded by ``before`` in ``mode`` -> (source row, inside mask)."""
    q = torch.arange(start - before, stop - before, device=device)
    inside = (q >= 0) & (q < length)
    if mode == "reflect":
        q = q.abs()
        q = torch.where(q >= length, 2 * (length - 1) - q, q)
    else:  # replicate, or zeros (rows outside are zeroed by the caller)
        q = q.clamp(0, length - 1)
    return q, inside


def _conv_padding(conv: nn.Conv2d) -> tuple[tuple[int, int, int, int], str] | None:
    """``((top, bottom, left, right), mode)`` of a conv's own padding, or None where it is not handled."""
    if isinstance(conv.padding, str):
        if conv.padding != "valid":
            return None
        return (0, 0, 0, 0), "zeros"
    ph, pw = conv.padding
    modes = {"zeros": "zeros", "reflect": "reflect", "replicate": "replicate"}
    if conv.padding_mode not in modes:
        return None
    return (ph, ph, pw, pw), modes[conv.padding_mode]


def _pad_layer(layer: nn.Module) -> tuple[tuple[int, int, int, int], str] | None:
    """``((top, bottom, left, right), mode)`` of a 2-D pad layer (None for a non-zero constant)."""
    left, right, top, bottom = layer.padding
    if isinstance(layer, nn.ReflectionPad2d):
        return (top, bottom, left, right), "reflect"
    if isinstance(layer, nn.ReplicationPad2d):
        return (top, bottom, left, right), "replicate"
    if isinstance(layer, nn.ConstantPad2d) and float(layer.value) != 0.0:
        return None
    return (top, bottom, left, right), "zeros"


class LayerwiseRunner:
    """Runs a network layer by layer over a whole ``(N, C, H, W)`` tensor; see the module docstring.

    Args:
        band_elements: about how many floats one band's temporaries may hold (sets the rows per band).
        attention: ``"linear"`` (gathered valid keys, chunked queries; memory linear in the cells) or
            ``"dense"`` (:func:`~oldphoto_bench.models.dense_partial_nonlocal_reference`, the released
            code's full (h w) x (h w) attention; for comparisons only).

    Never writes into the tensors it is given; runs without autograd.
    """

    def __init__(self, band_elements: int = DEFAULT_BAND_ELEMENTS, attention: str = "linear"):
        if int(band_elements) < 1:
            raise ValueError(f"band_elements must be >= 1, got {band_elements}")
        if attention not in ATTENTION_MODES:
            raise KeyError(f"unknown attention {attention!r}; valid names: {', '.join(ATTENTION_MODES)}")
        self.band_elements = int(band_elements)
        self.attention = attention
        self.fallbacks: list[str] = []

    # ---- entry points -------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, encoder: VAEEncoder, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``mu`` of a :class:`~oldphoto_bench.models.VAEEncoder` (logvar head skipped)."""
        h = self.run(encoder.body, x)
        return self.run(encoder.mu_head, h, owned=True)

    @torch.no_grad()
    def map(
        self, mapping: MappingNetwork, z: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mapping(z, valid)``: up convs, the partial nonlocal block over the whole grid, the body."""
        h = self.run(mapping.up, z)
        if mapping.nonlocal_block is not None:
            h = self.nonlocal_block(mapping.nonlocal_block, h, valid, owned=h is not z)
        elif valid is not None:
            raise ValueError(
                "this MappingNetwork has no nonlocal block (nonlocal_block=False); pass valid=None"
            )
        if mapping.context is not None:  # per-channel statistics over the whole grid: O(h) memory
            h = mapping.context(h)
        out = self.run(mapping.body, h, owned=True)
        return out.add_(z) if mapping.residual else out

    @torch.no_grad()
    def run(self, module: nn.Module, x: torch.Tensor, owned: bool = False) -> torch.Tensor:
        """``module(x)``. ``owned=True`` lets the runner overwrite ``x`` (a tensor it made itself)."""
        if isinstance(module, nn.Sequential):
            return self._sequential(module, x, owned)
        if isinstance(module, nn.Conv2d):
            padding = _conv_padding(module)
            if padding is not None:
                return self.conv(module, x, *padding)
        elif isinstance(module, nn.ConvTranspose2d):
            if module.output_padding[0] == 0 and module.dilation[0] == 1 and module.padding_mode == "zeros":
                return self.conv_transpose(module, x)
        elif isinstance(module, nn.InstanceNorm2d):
            return self.instance_norm(module, x if owned else x.clone())
        elif isinstance(module, _ELEMENTWISE):
            return self._elementwise(module, x if owned else x.clone())
        elif isinstance(module, nn.Identity):
            return x
        elif isinstance(module, _PAD_LAYERS):
            pad = _pad_layer(module)
            if pad is not None:
                return self._pad(x, *pad)
        elif isinstance(module, ResidualBlock):
            return self.residual(module, x, owned)
        elif isinstance(module, PartialNonLocal):
            return self.nonlocal_block(module, x, None, owned)
        elif isinstance(module, VAEEncoder):
            return self.encode(module, x)
        elif isinstance(module, VAEDecoder):
            return self.run(module.body, x, owned)
        elif isinstance(module, MappingNetwork):
            return self.map(module, x)
        self.fallbacks.append(type(module).__name__)
        return module(x)

    # ---- layers -------------------------------------------------------------------------------------------
    def _rows_per_band(self, per_row: int) -> int:
        return max(1, self.band_elements // max(1, per_row))

    def _sequential(self, seq: nn.Sequential, x: torch.Tensor, owned: bool) -> torch.Tensor:
        layers = list(seq)
        i = 0
        while i < len(layers):
            layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            pad = _pad_layer(layer) if isinstance(layer, _PAD_LAYERS) else None
            if (
                pad is not None
                and isinstance(nxt, nn.Conv2d)
                and _conv_padding(nxt) == ((0, 0, 0, 0), "zeros")
            ):
                y = self.conv(nxt, x, *pad)  # the pad layer is folded into the conv's bands
                i += 2
            else:
                y = self.run(layer, x, owned)
                i += 1
            owned = owned or y is not x
            x = y
        return x

    def conv(
        self, conv: nn.Conv2d, x: torch.Tensor, pad: tuple[int, int, int, int], mode: str
    ) -> torch.Tensor:
        """``conv`` on ``x`` padded by ``pad`` = (top, bottom, left, right) in ``mode``, band by band."""
        n, c, h, w = x.shape
        top, bottom, left, right = pad
        if mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
            raise ValueError(f"reflection padding {pad} needs a larger input than {h}x{w}")
        (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
        hp, wp = h + top + bottom, w + left + right
        h_out, w_out = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
        out = x.new_empty(n, conv.out_channels, h_out, w_out)
        rows = self._rows_per_band(w_out * conv.out_channels + sh * wp * c)
        w_mode = "constant" if mode == "zeros" else mode
        for o0 in range(0, h_out, rows):
            o1 = min(h_out, o0 + rows)
            a, b = o0 * sh, (o1 - 1) * sh + dh * (kh - 1) + 1  # rows [a, b) of the padded input
            src, inside = _source_rows(a, b, top, h, mode, x.device)
            if bool(inside.all()):  # no padding rows in this band: a view
                band = x[:, :, a - top : b - top]
            else:
                band = x.index_select(2, src)
                if mode == "zeros":
                    band = band * inside.view(1, 1, -1, 1).to(band.dtype)
            if left or right:
                band = F.pad(band, (left, right, 0, 0), mode=w_mode)
            out[:, :, o0:o1] = F.conv2d(band, conv.weight, conv.bias, (sh, sw), 0, (dh, dw), conv.groups)
        return out

    def conv_transpose(self, conv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
        """A transposed conv (no output padding or dilation along H) band by band of output rows.

        Input row ``i`` feeds rows ``i s .. i s + k - 1`` of the uncropped output, which is cropped by the
        padding ``p``; a band of output rows ``[o0, o1)`` reads input rows ``ceil((o0 + p - k + 1) / s) ..
        floor((o1 + p - 1) / s)``.
        """
        n, c, h, w = x.shape
        (kh, _), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
        h_out = (h - 1) * sh - 2 * ph + kh
        w_out = (
            (w - 1) * sw - 2 * pw + conv.dilation[1] * (conv.kernel_size[1] - 1) + conv.output_padding[1] + 1
        )
        out = x.new_empty(n, conv.out_channels, h_out, w_out)
        rows = self._rows_per_band(2 * w_out * conv.out_channels + w * c)
        for o0 in range(0, h_out, rows):
            o1 = min(h_out, o0 + rows)
            u0, u1 = o0 + ph, o1 + ph  # uncropped rows
            ia = max(0, math.ceil((u0 - kh + 1) / sh))
            ib = min(h - 1, (u1 - 1) // sh)
            y = F.conv_transpose2d(
                x[:, :, ia : ib + 1],
                conv.weight,
                conv.bias,
                (sh, sw),
                (0, pw),
                (0, conv.output_padding[1]),
                conv.groups,
                (1, conv.dilation[1]),
            )
            out[:, :, o0:o1] = y[:, :, u0 - ia * sh : u1 - ia * sh]
        return out

    def instance_norm(self, norm: nn.InstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / sqrt(var + eps)`` per image and channel (biased variance, as torch), in place."""
        n, c, h, w = x.shape
        rows = self._rows_per_band(w * c)
        if norm.track_running_stats and not norm.training:
            mean = norm.running_mean.to(torch.float64).view(1, c, 1, 1).expand(n, c, 1, 1)
            var = norm.running_var.to(torch.float64).view(1, c, 1, 1).expand(n, c, 1, 1)
        else:
            # per-band mean and variance (torch accumulates float32 in double on the CPU), merged with Chan et
            # al.'s pairwise update in float64: no cancellation, whatever the number of bands
            count = 0
            mean = x.new_zeros(n, c, 1, 1, dtype=torch.float64)
            m2 = x.new_zeros(n, c, 1, 1, dtype=torch.float64)
            for r in range(0, h, rows):
                band = x[:, :, r : r + rows]
                v, m = (t.double() for t in torch.var_mean(band, dim=(2, 3), keepdim=True, unbiased=False))
                k = band.shape[2] * w
                delta, total = m - mean, count + k
                mean = mean + delta * (k / total)
                m2 = m2 + v * k + delta.square() * (count * k / total)
                count = total
            var = m2 / count
        # (x - mean) * rstd in this order, as torch does: x * rstd - mean * rstd would cancel in float32
        mean32, rstd32 = mean.to(x.dtype), (var + norm.eps).rsqrt().to(x.dtype)
        for r in range(0, h, rows):
            band = x[:, :, r : r + rows].sub_(mean32).mul_(rstd32)
            if norm.affine:
                band.mul_(norm.weight.view(1, c, 1, 1)).add_(norm.bias.view(1, c, 1, 1))
        return x

    @staticmethod
    def _elementwise(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(module, nn.ReLU):
            return x.relu_()
        if isinstance(module, nn.LeakyReLU):
            return F.leaky_relu_(x, module.negative_slope)
        if isinstance(module, nn.Sigmoid):
            return x.sigmoid_()
        return x.tanh_()

    @staticmethod
    def _pad(x: torch.Tensor, pad: tuple[int, int, int, int], mode: str) -> torch.Tensor:
        top, bottom, left, right = pad
        return F.pad(x, (left, right, top, bottom), mode="constant" if mode == "zeros" else mode)

    def residual(self, block: ResidualBlock, x: torch.Tensor, owned: bool = False) -> torch.Tensor:
        """``x + gate * branch(x)``; holds x and the branch's two conv outputs at most.

        When ``x`` is owned the sum is written into it: a chain of residual blocks then works in one tensor,
        and callers further up that still refer to the chain's input hold no extra copy.
        """
        h = self.run(block.branch, x, owned=False)
        if h is x:
            h = h.clone()
        if block.gate is not None:
            h.mul_(block.gate.to(h.dtype))
        return x.add_(h) if owned else h.add_(x)

    def nonlocal_block(
        self, block: PartialNonLocal, x: torch.Tensor, valid: torch.Tensor | None, owned: bool = False
    ) -> torch.Tensor:
        """The partial nonlocal block (fusion over the whole grid, then its residual blocks)."""
        if self.attention == "dense":
            fused = dense_partial_nonlocal_reference(block, x, valid)
        else:
            fused = self.fuse(block, x if owned else x.clone(), valid)
        return self.run(block.res_blocks, fused, owned=True)

    def fuse(self, block: PartialNonLocal, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """:meth:`PartialNonLocal.fuse` computed in place on ``x`` ``(N, C, h, w)``.

        For each image: keys ``phi(x_j)`` and values ``g(x_j)`` of the valid cells ``j`` (projected in
        chunks),
        then for chunks of invalid cells ``i``: ``x_i += W(softmax_j(scale theta(x_i) . phi(x_j)) g(x_j))``.
        Memory: ``x`` plus ``2 d`` floats per valid cell.
        """
        n, c, h, w = x.shape
        if c != block.channels:
            raise ValueError(f"x must be (N, {block.channels}, h, w), got {tuple(x.shape)}")
        if valid is None:
            return x
        x = x.contiguous()  # the token view below must write into x
        if valid.dim() != 4 or tuple(valid.shape) != (n, 1, h, w):
            raise ValueError(
                f"valid must be (N, 1, h, w) = ({n}, 1, {h}, {w}) like x, got {tuple(valid.shape)}"
            )
        flat_valid = (valid if valid.dtype == torch.bool else valid > 0.5).reshape(n, h * w).to(x.device)
        lin = {
            name: (m.weight.reshape(m.out_channels, m.in_channels), m.bias)
            for name, m in (("theta", block.theta), ("phi", block.phi), ("g", block.g), ("W", block.W))
        }
        chunk = max(1, self.band_elements // max(c, block.inter_channels))
        for b in range(n):
            vb = flat_valid[b]
            q_idx, k_idx = (~vb).nonzero().squeeze(1), vb.nonzero().squeeze(1)
            if q_idx.numel() == 0 or k_idx.numel() == 0:
                continue  # nothing to fill, or nothing to fill from: fused = x
            tokens = x[b].reshape(c, h * w)  # a view: writes land in x
            d = block.inter_channels
            keys = x.new_empty(k_idx.numel(), d)
            values = x.new_empty(k_idx.numel(), d)
            for s in range(0, k_idx.numel(), chunk):
                xk = tokens.index_select(1, k_idx[s : s + chunk]).t()
                keys[s : s + chunk] = F.linear(xk, *lin["phi"])
                values[s : s + chunk] = F.linear(xk, *lin["g"])
            for s in range(0, q_idx.numel(), block.query_chunk):
                idx = q_idx[s : s + block.query_chunk]
                xq = tokens.index_select(1, idx).t()
                q = F.linear(xq, *lin["theta"])
                attended = F.scaled_dot_product_attention(
                    q[None, None], keys[None, None], values[None, None], scale=block.scale
                )[0, 0]
                tokens.index_copy_(1, idx, (xq + F.linear(attended, *lin["W"])).t())
        return x
