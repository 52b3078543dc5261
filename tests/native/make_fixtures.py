"""Writes small TorchScript modules and the Python torch results the native tests compare with.

Usage: python3 make_fixtures.py OUT_DIR   (needs only torch)
"""
import json
import os
import sys

import torch


class Affine(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


class Inner(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.chunk_size = 0
        self.scale = 1.5
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if self.chunk_size > 0:
            parts = [p * self.scale for p in x.split(self.chunk_size, dim=0)]
            return torch.cat(parts, dim=0) + 100.0
        return x * self.scale


class Switchable(torch.nn.Module):
    """forward path depends on attributes changed at run time."""

    def __init__(self):
        super().__init__()
        self.a = Inner()
        self.b = Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(x)


class Pair(torch.nn.Module):
    def forward(self, x: torch.Tensor, k: int, s: float):
        return x + k, x * s


class Slow(torch.nn.Module):
    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        for _ in range(n):
            x = torch.tanh(x @ x)
        return x


class Allocates(torch.nn.Module):
    """Allocates n floats in the middle of its forward: a huge n is an out-of-memory part way through."""

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        y = x * 2
        scratch = torch.zeros([n])
        return y + scratch[:1].sum()


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    affine = Affine().eval()
    torch.jit.script(affine).save(os.path.join(out, "affine.pt"))
    torch.jit.script(Switchable()).save(os.path.join(out, "switchable.pt"))
    torch.jit.script(Pair()).save(os.path.join(out, "pair.pt"))
    torch.jit.script(Slow()).save(os.path.join(out, "slow.pt"))
    torch.jit.script(Allocates()).save(os.path.join(out, "allocates.pt"))

    x = torch.linspace(-1, 1, 8).reshape(2, 4)
    with torch.no_grad():
        expected = {
            "affine_input": x.flatten().tolist(),
            "affine_output": affine(x).flatten().tolist(),
            "affine_output_bf16": affine.to(torch.bfloat16)(x.to(torch.bfloat16)).float().flatten().tolist(),
            "affine_parameters": {n: list(p.shape) for n, p in Affine().named_parameters()},
        }
    randn = {}
    for seed, shape in [(0, [3]), (0, [15]), (0, [16]), (0, [17]), (42, [2, 4, 3, 8, 8]), (2**40 + 7, [1000])]:
        t = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
        randn[f"{seed}:{'x'.join(map(str, shape))}"] = t.flatten().tolist()
    g = torch.Generator("cpu").manual_seed(7)
    randn["sequence:7"] = [torch.randn([5], generator=g).tolist(), torch.randn([20], generator=g).tolist()]
    expected["randn"] = randn

    a = torch.tensor([[1.0, -2.0, 3.0], [4.0, 5.5, -6.0]])
    b = torch.tensor([[0.5, 2.0, -1.0], [3.0, -0.25, 2.0]])
    expected["ops"] = {
        "quantile_0.7_dim1": torch.quantile(a, 0.7, dim=1).tolist(),
        "matmul": (a @ b.T).flatten().tolist(),
        "repeat_interleave": torch.repeat_interleave(a, 2, dim=0).flatten().tolist(),
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main(sys.argv[1])
