"""Independent UNet FLOP count: run the converter's own UNet3DConditionModel (eager, not scripted)
and count with forward hooks: 2 x MACs of every nn.Conv2d / nn.Conv3d / nn.Linear from its weight
and output shapes, plus the two attention matmuls from the q/k/v shapes the attention core
receives. Prints JSON {"total", "conv", "linear", "attention"}.

usage: /usr/bin/python3 bench/python/count_unet_flops.py CONFIG.json BATCH FRAMES H W [SEQ] [--meta]
(run from the repository root; --meta builds and runs on the meta device: shapes only, any size)
"""
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from convert.models.unet3d import UNet3DConditionModel  # noqa: E402
from convert.models import common  # noqa: E402


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    meta = "--meta" in sys.argv
    config = json.load(open(args[0]))
    b, f, h, w = (int(x) for x in args[1:5])
    seq = int(args[5]) if len(args) > 5 else 77
    dd = {"device": "meta"} if meta else {}
    torch.manual_seed(0)
    model = UNet3DConditionModel(config, attn_kind="plain", dd=dd).eval()
    counts = {"conv": 0, "linear": 0, "attention": 0}

    def conv_hook(mod, inp, out):
        # every output element needs (Cin/groups) x kernel MACs
        k = mod.weight.shape[1]
        for s in mod.weight.shape[2:]:
            k *= s
        counts["conv"] += 2 * out.numel() * k

    def linear_hook(mod, inp, out):
        counts["linear"] += 2 * out.numel() * mod.in_features

    def attn_hook(mod, inp, out):
        q, k, v = inp[0], inp[1], inp[2]
        bq, hq, n, d = q.shape
        m = k.shape[2]
        counts["attention"] += 2 * bq * hq * n * m * d + 2 * bq * hq * n * m * v.shape[-1]

    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Conv3d)):
            mod.register_forward_hook(conv_hook)
        elif isinstance(mod, nn.Linear):
            mod.register_forward_hook(linear_hook)
        elif isinstance(mod, (common.PlainAttentionCore, common.SdpaAttentionCore)):
            mod.register_forward_hook(attn_hook)
    if meta:
        # torch 1.13 has no meta kernel for repeat_interleave(int) without output_size
        original = torch.Tensor.repeat_interleave

        def repeat_interleave(self, repeats, dim=None, **kw):
            if self.is_meta and isinstance(repeats, int) and dim is not None:
                shape = list(self.shape)
                shape[dim] *= repeats
                return self.new_empty(shape)
            return original(self, repeats, dim, **kw)

        torch.Tensor.repeat_interleave = repeat_interleave
    dev = "meta" if meta else "cpu"
    sample = torch.randn(b, config.get("in_channels", 4), f, h, w, device=dev)
    t = torch.tensor(500.0, device=dev)
    ehs = torch.randn(b, seq, config.get("cross_attention_dim", 1024), device=dev)
    with torch.no_grad():
        out = model(sample, t, ehs)
    assert tuple(out.shape) == tuple(sample.shape), out.shape
    counts["total"] = counts["conv"] + counts["linear"] + counts["attention"]
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
