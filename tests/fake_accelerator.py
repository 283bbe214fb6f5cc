"""A stand-in accelerator for a CPU-only machine: catches code that mixes devices, as a GPU would.

On a GPU, a tensor made on the CPU that meets a model on CUDA raises "Expected all
tensors to be on the same device". On a CPU-only machine every tensor is on the CPU,
so such code passes every test and fails in the reader's Colab. This module makes a
second device: `install()` makes `lmlab.device()` return `meta`, and a
TorchDispatchMode runs every operation on the CPU while tracking which tensors live on
the "accelerator" (an `OnAccelerator` wrapper that reports device `meta`). An operation
that mixes the two raises, as CUDA does, with the same exceptions CUDA allows: 0-d CPU
tensors (scalars), CPU index tensors, and explicit copies. A generator on the wrong device
for its draw raises too (`torch.Generator(device=...)` knows the stand-in), and so does
`.numpy()` of an accelerator tensor.

Every value is real (computed on the CPU), so whole notebooks run: `.item()`,
`.tolist()` and `.cpu()` work as they do on a GPU.
"""

import sys
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

ACCELERATOR = torch.device("meta")  # a device every CPU build knows, standing in for "cuda"
aten = torch.ops.aten
MAY_MIX = {aten.copy_.default, aten._to_copy.default, aten.index.Tensor, aten.index_put_.default,
           aten.index_put.default, aten._index_put_impl_.default}  # what CUDA itself accepts across devices


class DeviceMismatch(RuntimeError):
    pass


class OnAccelerator(torch.Tensor):
    """A CPU tensor (`elem`) that claims to live on the accelerator."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        r = torch.Tensor._make_wrapper_subclass(cls, elem.shape, strides=elem.stride(),
                                                storage_offset=elem.storage_offset(), dtype=elem.dtype,
                                                layout=elem.layout, device=ACCELERATOR,
                                                requires_grad=elem.requires_grad)
        r.elem = elem
        return r

    def __repr__(self):
        return f"OnAccelerator({self.elem!r})"

    def tolist(self):
        return self.elem.tolist()

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert an accelerator tensor to numpy. Use Tensor.cpu() to copy the tensor to host "
                        "memory first.")

    def __array__(self, *args, **kwargs):
        return self.numpy()

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"{func} reached an accelerator tensor outside the FakeAccelerator mode")


class AcceleratorGenerator(torch.Generator):
    """`torch.Generator(device=...)` that also knows the stand-in: a CPU generator underneath, which
    claims the accelerator's device, as a CUDA generator would for CUDA draws."""

    def __new__(cls, device="cpu"):
        claims = torch.device(device)
        generator = super().__new__(cls, "cpu" if claims.type == ACCELERATOR.type else claims)
        generator._claims = claims
        return generator

    def __init__(self, device="cpu"):
        pass

    @property
    def device(self):
        return self._claims

    def manual_seed(self, seed):  # torch's returns a plain Generator, which would forget the claim
        super().manual_seed(seed)
        return self

    def set_state(self, state):
        super().set_state(state)
        return self


def _is_accelerator(device) -> bool:
    return device is not None and torch.device(device).type == ACCELERATOR.type


class FakeAccelerator(TorchDispatchMode):
    """Runs every aten operation on the CPU, raising where CUDA would refuse to mix devices."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # aten arguments are flat: tensors, lists of tensors, numbers (no pytree: it was most of the cost)
        kwargs = kwargs or {}
        state = [False, False]  # an accelerator tensor seen, a non-scalar CPU tensor seen
        args = tuple(_unwrap(a, state) for a in args)
        kwargs = {k: _unwrap(v, state) for k, v in kwargs.items()}
        if state[0] and state[1] and func not in MAY_MIX:
            raise DeviceMismatch(f"Expected all tensors to be on the same device, but found at least two devices, "
                                 f"{ACCELERATOR} (standing in for cuda) and cpu! (in {func})")
        target = kwargs.get("device")
        if _is_accelerator(target):
            kwargs["device"] = torch.device("cpu")
        out = func(*args, **kwargs)
        wrap = _is_accelerator(target) if target is not None else state[0]  # a factory or copy: where it was sent
        return _wrap(out) if wrap else out


def _unwrap(x, state):
    if isinstance(x, OnAccelerator):
        state[0] = True
        return x.elem
    if isinstance(x, torch.Tensor):
        if x.dim() > 0:
            state[1] = True
        return x
    if isinstance(x, (list, tuple)) and x and any(isinstance(y, torch.Tensor) for y in x):
        return type(x)(_unwrap(y, state) for y in x)
    return x


def _wrap(out):
    if type(out) is torch.Tensor:
        return OnAccelerator(out)
    if isinstance(out, (list, tuple)):
        return type(out)(_wrap(y) for y in out)
    return out


FROM_DATA = {torch.tensor, torch.as_tensor, torch.asarray}


class FunctionLevel(TorchFunctionMode):
    """What must be seen before the dispatcher: generators, which it re-wraps (a draw must use a
    generator of the device it draws on, as CUDA demands), and tensors made from Python data
    (`torch.tensor(data, device=...)`), which it would make on the real meta device, without data."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FROM_DATA and _is_accelerator(kwargs.get("device")):
            return func(*args, **{**kwargs, "device": "cpu"}).to(ACCELERATOR)
        generator = kwargs.get("generator")
        if isinstance(generator, torch.Generator):
            flat, _ = tree_flatten((args, kwargs))
            draws_there = any(isinstance(t, OnAccelerator) for t in flat) or _is_accelerator(kwargs.get("device"))
            if draws_there != _is_accelerator(generator.device):
                want, got = ("cuda", "cpu") if draws_there else ("cpu", "cuda")
                raise DeviceMismatch(f"Expected a '{want}' device type for generator but found '{got}' "
                                     f"(in {getattr(func, '__name__', func)})")
        return func(*args, **kwargs)


def _patch_device() -> list:
    """Point every lmlab module's `device` function (and aliases of it) at the stand-in accelerator;
    returns what to put back."""
    import lmlab

    original, undo = lmlab.device, [(torch, "Generator", torch.Generator)]
    torch.Generator = AcceleratorGenerator
    for name, module in list(sys.modules.items()):
        if name == "lmlab" or name.startswith("lmlab."):
            for attr, value in list(vars(module).items()):
                if value is original:
                    undo.append((module, attr, value))
                    setattr(module, attr, lambda: ACCELERATOR)
    return undo


@contextmanager
def accelerator():
    """In this block, `lmlab.device()` is the stand-in accelerator and mixing devices raises."""
    undo = _patch_device()
    try:
        with FunctionLevel(), FakeAccelerator():
            yield ACCELERATOR
    finally:
        for module, attr, value in undo:
            setattr(module, attr, value)


def install() -> tuple:
    """The same for the rest of this thread: a kernel's startup file calls this before any cell."""
    _patch_device()
    modes = FunctionLevel(), FakeAccelerator()
    for mode in modes:
        mode.__enter__()
    return modes
