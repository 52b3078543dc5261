"""Python baseline for bench/unet-forward.ts: the same unet.pt, the same inputs (seeded CPU noise,
batch 2 as with classifier-free guidance), N timed forwards after warm-up.

usage: /usr/bin/python3 bench/python/unet_forward.py MODEL_DIR [FRAMES] [SIZE] [N] [WARMUP]
Prints one JSON object: per-forward milliseconds (all, and the median).
Run it once at default settings and once with the tuned glibc allocator:
  MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=4000000000 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TOP_PAD_=1000000000
"""
import json
import os
import statistics
import sys
import time

import torch

model, frames, size, n, warmup = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 16, \
    int(sys.argv[3]) if len(sys.argv) > 3 else 16, int(sys.argv[4]) if len(sys.argv) > 4 else 5, \
    int(sys.argv[5]) if len(sys.argv) > 5 else 1
torch.set_num_threads(os.cpu_count() or 1)
cfg = json.load(open(os.path.join(model, "configs", "unet.json")))
g = torch.Generator().manual_seed(0)
sample = torch.randn(2, cfg["in_channels"], frames, size, size, generator=g)
context = torch.randn(2, 77, cfg["cross_attention_dim"], generator=g)
t = torch.tensor(500.0)
with torch.inference_mode():
    unet = torch.jit.load(os.path.join(model, "unet.pt"))
    unet.eval()
    for _ in range(warmup):
        unet(sample, t, context)
    times = []
    r0 = os.times()
    for _ in range(n):
        t0 = time.perf_counter()
        out = unet(sample, t, context)
        times.append((time.perf_counter() - t0) * 1000)
    r1 = os.times()
print(json.dumps({"side": "python", "threads": torch.get_num_threads(), "ms": [round(x, 1) for x in times],
                  "median_ms": round(statistics.median(times), 1),
                  "user_ms_per_forward": round((r1.user - r0.user) * 1000 / n), "sys_ms_per_forward": round((r1.system - r0.system) * 1000 / n),
                  "out_mean_abs": out.abs().mean().item()}))
