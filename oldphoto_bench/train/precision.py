"""Mixed precision and memory format on CUDA; plain float32 on CPU.

``optim.amp`` in a training config: ``auto`` (bf16 where the GPU supports it, else fp16), ``bf16``, ``fp16``
or ``none``. fp16 needs loss scaling (``torch.amp.GradScaler``); bf16 has float32's exponent range and does
not. On CPU training is always float32: autocast there is slower than float32 on most CPUs.
"""

from __future__ import annotations

import contextlib

import torch

AMP_MODES = ("auto", "bf16", "fp16", "none")


class Precision:
    """Autocast context, gradient scaler and memory format for one device."""

    def __init__(self, device: str, amp: str = "auto", channels_last: bool = True):
        if amp not in AMP_MODES:
            raise ValueError(f"unknown optim.amp {amp!r}; valid: {', '.join(AMP_MODES)}")
        self.device = device
        cuda = device.startswith("cuda")
        if not cuda or amp == "none":
            self.dtype = None
        elif amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
            self.dtype = torch.bfloat16
        else:
            self.dtype = torch.float16
        self.channels_last = bool(channels_last and cuda)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    @property
    def description(self) -> str:
        kind = {None: "float32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + GradScaler"}
        return kind[self.dtype] + (", channels_last" if self.channels_last else "")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move a network to the device (and to channels_last on CUDA)."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, *more: torch.optim.Optimizer) -> None:
        """Zero the grads, backpropagate ``loss`` (scaled for fp16) and step ``optimizer`` (and ``more``:
        optimizers of other networks that the same loss trains)."""
        for opt in (optimizer, *more):
            opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for opt in (optimizer, *more):
            self.scaler.step(opt)

    def update(self) -> None:
        """Once per training step, after every optimizer stepped: adapt the fp16 loss scale."""
        self.scaler.update()
