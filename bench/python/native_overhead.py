"""Python-torch side of bench/native.ts: the same small ops and the same tiny TorchScript forward,
timed the same way (µs per call: samples of BATCH back-to-back calls; median, p10, p90).

usage: /usr/bin/python3 bench/python/native_overhead.py MODULE.pt THREADS [--quick]
Prints one JSON object: {"torch": version, "threads": n, "rows": {name: {median, p10, p90, n}}}.
"""
import json
import sys
import time

import numpy as np
import torch


def summarise(values):
    s = sorted(values)

    def q(p):
        pos = (len(s) - 1) * p
        lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return {"n": len(s), "median": q(0.5), "p10": q(0.1), "p90": q(0.9), "min": s[0], "mean": sum(s) / len(s)}


def time_calls(fn, batch=100, samples=200, warmup=None, max_ms=5000):
    for _ in range(batch if warmup is None else warmup):
        fn()
    out = []
    start = time.perf_counter()
    while len(out) < samples and (len(out) < 5 or (time.perf_counter() - start) * 1e3 < max_ms):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter() - t0) / batch * 1e6)
    return summarise(out)


def main():
    module_path, threads = sys.argv[1], int(sys.argv[2])
    quick = "--quick" in sys.argv
    samples = 50 if quick else 200
    max_ms = 1500 if quick else 5000
    torch.set_num_threads(threads)
    rows = {}
    with torch.inference_mode():
        host = np.arange(16, dtype=np.float32)

        def roundtrip():
            x = torch.from_numpy(host).clone()  # host -> new tensor (a copy, as Tensor.from)
            y = torch.mul(x, 0.5).add_(x, alpha=2.0)  # axpby, as src/core.cc
            return y.numpy().copy()  # tensor -> new host array (a copy, as dataSync)

        rows["roundtrip from+axpby+dataSync [16]"] = time_calls(roundtrip, samples=samples, max_ms=max_ms)
        small = torch.arange(16, dtype=torch.float32)
        rows["axpby [16]"] = time_calls(lambda: torch.mul(small, 0.5).add_(small, alpha=2.0), samples=samples, max_ms=max_ms)
        big_x = torch.randn(2, 4, 16, 32, 32)
        big_y = torch.randn(2, 4, 16, 32, 32)
        rows["axpby [2,4,16,32,32]"] = time_calls(lambda: torch.mul(big_x, 0.5).add_(big_y, alpha=2.0), batch=20, warmup=200,
                                                  samples=samples, max_ms=max_ms)
        module = torch.jit.load(module_path)
        inp = torch.randn(1, 4)
        rows["forward Linear(4,4) TorchScript"] = time_calls(lambda: module(inp), samples=samples, max_ms=max_ms)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}))


if __name__ == "__main__":
    main()
