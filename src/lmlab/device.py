"""Where a run computes, and in what precision: both decided once, from the hardware.

CUDA, else Apple's MPS, else the CPU. On CUDA the precision follows the GPU:
bfloat16 autocast where it has native bf16 (compute capability ≥ 8.0: A100, L4,
H100), float16 autocast with a gradient scaler below that (Colab's free T4 is 7.5,
a V100 7.0: they have fp16 tensor cores and no bf16), and plain float32 on the CPU
and MPS. fp16's narrow range underflows small gradients, hence the scaler; bf16 has
float32's range and needs none. Fused AdamW is used on CUDA only.
"""

from contextlib import nullcontext
from dataclasses import dataclass

import torch


def device() -> torch.device:
    """CUDA, else Apple's MPS, else the CPU; picked once for every run."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Precision:
    """How a device trains: the autocast dtype (None: no autocast, float32 throughout), whether
    gradients need loss scaling, and whether AdamW may use its fused CUDA kernel."""

    device_type: str
    autocast_dtype: torch.dtype | None
    grad_scaler: bool
    fused_adamw: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + GradScaler"}[
            self.autocast_dtype]

    def autocast(self):
        """The forward pass's context: autocast to `autocast_dtype`, or nothing."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is live only where fp16 needs it (disabled, it passes everything through)."""
        return torch.amp.GradScaler(self.device_type if self.grad_scaler else "cpu", enabled=self.grad_scaler)


def precision_for(device_type: str, capability: tuple[int, int] | None = None) -> Precision:
    """The precision of a device described by its type ("cuda", "mps", "cpu") and, for CUDA, its
    compute capability (major, minor): a pure function, so the choice is testable on any machine."""
    if device_type != "cuda":
        return Precision(device_type, None, grad_scaler=False, fused_adamw=False)
    if capability is None:
        raise ValueError("capability (major, minor) is needed to choose a CUDA device's precision, got None")
    if tuple(capability) >= (8, 0):
        return Precision("cuda", torch.bfloat16, grad_scaler=False, fused_adamw=True)
    return Precision("cuda", torch.float16, grad_scaler=True, fused_adamw=True)


def precision(dev: torch.device | str) -> Precision:
    """The precision `dev` trains in (see `precision_for`)."""
    dev = torch.device(dev)
    capability = torch.cuda.get_device_capability(dev) if dev.type == "cuda" else None
    return precision_for(dev.type, capability)


def rng_devices(dev: torch.device | str) -> list:
    """The devices whose random state `torch.random.fork_rng` must save besides the CPU's."""
    dev = torch.device(dev)
    return [dev] if dev.type == "cuda" else []
