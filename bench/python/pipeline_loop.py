"""Python baseline for bench/pipeline.ts: the same TorchScript files (text_encoder.pt, unet.pt,
vae_decoder.pt of a torchvid model folder) driven by a plain Python torch loop: text encode
(uncond "" + prompt, the token ids given by the caller), CPU-seeded latents, DDIM steps (eta 0,
diffusers' "leading" spacing) with classifier-free guidance, VAE decode, uint8 frames.

usage: /usr/bin/python3 bench/python/pipeline_loop.py SPEC.json
SPEC: {"model": dir, "device": "cpu", "dtype": "float32", "threads": 2, "frames": 8, "height": 32,
       "width": 32, "steps": 10, "guidance": 9.0, "seed": 0,
       "ids": [[77 ints uncond], [77 ints cond]], "warmup_steps": 2}
Prints one JSON object with the timings (ms unless named _s / _us) and the latents' mean abs value.
"""
import json
import os
import statistics
import sys
import time

import torch


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def now():
    return time.perf_counter()


def ddim_tables(cfg):
    n_train = cfg.get("num_train_timesteps", 1000)
    if cfg.get("beta_schedule", "scaled_linear") == "scaled_linear":
        betas = torch.linspace(cfg.get("beta_start", 0.00085) ** 0.5, cfg.get("beta_end", 0.012) ** 0.5, n_train,
                               dtype=torch.float32) ** 2
    else:
        betas = torch.linspace(cfg.get("beta_start", 0.0001), cfg.get("beta_end", 0.02), n_train, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0), n_train


def ddim_timesteps(n, n_train, offset):
    ratio = n_train // n
    return [int(i * ratio) + offset for i in reversed(range(n))], ratio


def main():
    spec = json.load(open(sys.argv[1]))
    device, dtype = spec.get("device", "cpu"), getattr(torch, spec.get("dtype", "float32"))
    torch.set_num_threads(int(spec.get("threads", 2)))
    model = spec["model"]
    sched_cfg = json.load(open(os.path.join(model, "scheduler", "scheduler_config.json")))
    vae_cfg = json.load(open(os.path.join(model, "configs", "vae.json")))
    scaling = vae_cfg.get("scaling_factor", 0.18215)
    vae_scale = 2 ** (len(vae_cfg.get("block_out_channels", [1, 1, 1, 1])) - 1)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": device}

    t0 = now()
    te = torch.jit.load(os.path.join(model, "text_encoder.pt"), map_location=device).to(dtype)
    unet = torch.jit.load(os.path.join(model, "unet.pt"), map_location=device).to(dtype)
    vae = torch.jit.load(os.path.join(model, "vae_decoder.pt"), map_location=device).to(dtype)
    for m in (te, unet, vae):
        m.eval()
    out["load_ms"] = (now() - t0) * 1e3

    frames, height, width = spec["frames"], spec["height"], spec["width"]
    steps, guidance, seed = spec["steps"], spec["guidance"], spec["seed"]
    cfg = guidance > 1
    ac, n_train = ddim_tables(sched_cfg)
    final_ac = torch.tensor(1.0) if sched_cfg.get("set_alpha_to_one", True) else ac[0]
    shape = [1, 4, frames, height // vae_scale, width // vae_scale]

    with torch.inference_mode():
        ids = torch.tensor(spec["ids"], dtype=torch.int64, device=device)

        def encode():
            uncond = te(ids[0:1])
            cond = te(ids[1:2])
            return torch.cat([uncond, cond]) if cfg else cond

        def step_ddim(t, prev_t, eps, x):
            a_t = ac[t]
            a_prev = ac[prev_t] if prev_t >= 0 else final_ac
            x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
            return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps

        def run(n_steps, record):
            timing = {}
            sync(device)
            start = now()
            t1 = now()
            embeds = encode()
            sync(device)
            timing["text_encode_ms"] = (now() - t1) * 1e3
            gen = torch.Generator("cpu").manual_seed(seed)
            latents = torch.randn(shape, generator=gen).to(device)
            timesteps, ratio = ddim_timesteps(n_steps, n_train, sched_cfg.get("steps_offset", 0))
            ts_dev = torch.tensor(timesteps, dtype=torch.float32, device=device)
            walls, unets = [], []
            for i, t in enumerate(timesteps):
                s0 = now()
                inp = torch.cat([latents, latents]) if cfg else latents
                u0 = now()
                noise = unet(inp, ts_dev[i], embeds)
                sync(device)
                unets.append((now() - u0) * 1e3)
                if cfg:
                    uncond, text = noise.chunk(2)
                    noise = uncond + guidance * (text - uncond)
                latents = step_ddim(t, t - ratio, noise, latents)
                sync(device)
                walls.append((now() - s0) * 1e3)
            d0 = now()
            b, c, f, h, w = latents.shape
            z = (latents / scaling).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
            images = vae(z)
            sync(device)
            timing["vae_decode_ms"] = (now() - d0) * 1e3
            video = images.reshape(b, f, 3, images.shape[-2], images.shape[-1]).float()
            frames_u8 = ((video / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            timing["end_to_end_s"] = now() - start
            if record:
                overheads = [(wa - un) * 1e3 for wa, un in zip(walls, unets)]
                timing.update({
                    "steps": len(timesteps),
                    "unet_ms_median": statistics.median(unets),
                    "step_ms_median": statistics.median(walls),
                    "host_overhead_us_median": statistics.median(overheads),
                    "host_overhead_us_p90": sorted(overheads)[int(0.9 * (len(overheads) - 1))],
                    "it_per_s": len(timesteps) / (sum(walls) / 1e3),
                    "latents_mean_abs": float(latents.abs().mean()),
                    "frames_shape": list(frames_u8.shape),
                })
            return timing

        warm = int(spec.get("warmup_steps", 2))
        if warm > 0:
            run(warm, False)  # TorchScript's profiling executor optimises on the first calls
        out.update(run(steps, True))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
