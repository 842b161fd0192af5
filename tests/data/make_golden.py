#!/usr/bin/python3
"""Writes the golden torch.save files that tests/tensor_file_test.cc reads.

Run from anywhere with Debian's python3-torch (the pyenv python3 on PATH has
no torch):

    /usr/bin/python3 tests/data/make_golden.py

The files were made with PyTorch 1.13; re-running with another version should
give files the test still accepts.

Every tensor holds values the C++ test recomputes (see Pattern() there):
element i (in row-major order of the shape) of pattern(shape, dtype, k) is
    i * 0.25 + k   for floating dtypes,
    i + k          for integer dtypes,
    i % 2 == 1     for bool.
"""

import collections
import os

import torch
from torch import nn

OUT = os.path.dirname(os.path.abspath(__file__))


def pattern(shape, dtype, k):
    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.float64)
    if dtype == torch.bool:
        values = (torch.arange(n) % 2) == 1
    elif dtype.is_floating_point:
        values = i * 0.25 + k
    else:
        values = torch.arange(n, dtype=torch.int64) + k
    return values.reshape(shape).to(dtype)


class Net(nn.Module):
    """Conv2d + BatchNorm2d + Linear: an OrderedDict state dict with _metadata
    and an int64 buffer (bn.num_batches_tracked)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


def net_state_dict():
    net = Net()
    with torch.no_grad():
        for k, t in enumerate(net.state_dict().values()):
            t.copy_(pattern(tuple(t.shape), t.dtype, k))
    state = net.state_dict()
    assert isinstance(state, collections.OrderedDict) and hasattr(state, "_metadata")
    return state


def save(obj, name, **kwargs):
    torch.save(obj, os.path.join(OUT, name), **kwargs)


def main():
    save(net_state_dict(), "state_dict_net.pth")
    save(net_state_dict(), "state_dict_protocol4.pth", pickle_protocol=4)
    save({"zeta": pattern((2, 3), torch.float32, 0),
          "alpha": pattern((4,), torch.int64, 1),
          "mid": pattern((1, 2), torch.float64, 2)}, "plain_dict.pt")
    save(pattern((2, 3, 4), torch.float32, 0), "tensor_float.pt")
    save(pattern((3, 4), torch.float32, 0).t(), "tensor_transposed.pt")
    save(pattern((5,), torch.int64, 7), "tensor_int64.pt")
    save(pattern((2, 2), torch.float64, 3), "tensor_float64.pt")
    base = pattern((3, 4), torch.float32, 0)
    save({"base": base,
          "row": base[1],
          "transposed": base.t(),
          "columns": base[:, 1:3],
          "expanded": base[0].expand(2, 4)}, "shared_views.pt")
    dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16,
              torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
              torch.bool]
    save({str(d).replace("torch.", ""): pattern((2, 3), d, 1) for d in dtypes}
         | {"empty": torch.zeros(0, 3)}, "dtypes.pt")
    save(nn.Parameter(pattern((2, 2), torch.float32, 0)), "parameter.pt")
    save({"weight": pattern((2,), torch.float32, 0), "config": None},
         "dict_with_none.pt")
    save({"model": {"w": pattern((2,), torch.float32, 0)}, "epoch": 3},
         "checkpoint.pt")
    save(pattern((3,), torch.float32, 0), "legacy.pt",
         _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
