"""--random: write a random-weight diffusers-format checkpoint folder for a named config.

Configs (tools/convert/assets/configs/):
  tiny            the reference tiny architecture of tests/fixtures/reference (UNet 339,588 /
                  CLIP 1,597,162 / VAE 167,959 parameters) with unet sample_size 16, so the default
                  video is 32x32 (vae_scale_factor 2); about a second per step on a 2-core CPU.
  ms-1.7b         damo-vilab/text-to-video-ms-1.7b (UNet 1,411,233,860 parameters).
  zeroscope-576w  cerspense/zeroscope_v2_576w: a fine-tune of ms-1.7b with the SAME config files
                  (assumed, including unet sample_size 32 -- fine-tuning re-saves the base config;
                  sample_size only sets the default resolution, never a weight shape).  It is meant to
                  be run at width 576, height 320, 24-36 frames.
Weights: normal(0, 0.02) for every weight and bias, LayerNorm / GroupNorm weight 1 and bias 0,
position embeddings normal(0, 0.01); deterministic for a given --seed.
"""

import os
import shutil
import time

import torch
import torch.nn as nn

from . import ConvertError, __version__
from .checkpoint import WEIGHT_NAMES, add_variant, read_json
from .export import DTYPES, Log, _make_temp_dir, _numel, _publish, build_modules, check_destination, human_bytes
from .safetensors_io import save_file

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
CONFIG_DIRS = {"tiny": "tiny", "ms-1.7b": "ms-1.7b", "zeroscope-576w": "ms-1.7b"}
RANDOM_CONFIGS = tuple(CONFIG_DIRS)


def config_dir(name):
    if name not in CONFIG_DIRS:
        raise ConvertError(f"unknown random config {name!r} (choose from {', '.join(RANDOM_CONFIGS)})")
    return os.path.join(ASSETS, "configs", CONFIG_DIRS[name])


def load_configs(name):
    d = config_dir(name)
    return {c: read_json(os.path.join(d, c, "config.json"), f"{name} {c} config")
            for c in ("unet", "vae", "text_encoder")}


def component_modules(component, config):
    """Meta-device modules whose parameter names are the checkpoint keys of ``component``."""
    return list(build_modules(component, config, "plain", "meta").values())


def count_component(component, config):
    """(total, {top-level child: count}) from the config, without allocating weights."""
    total = 0
    by_top = {}
    for m in component_modules(component, config):
        for name, p in m.named_parameters():
            top = name.split(".", 1)[0]
            by_top[top] = by_top.get(top, 0) + p.numel()
            total += p.numel()
    return total, by_top


def _param_specs(component, config):
    """[(key, shape, kind)] with kind in {'norm_weight', 'norm_bias', 'position', 'normal'}."""
    specs = []
    for m in component_modules(component, config):
        for mod_name, mod in m.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                key = f"{mod_name}.{pname}" if mod_name else pname
                if isinstance(mod, (nn.LayerNorm, nn.GroupNorm)):
                    kind = "norm_weight" if pname == "weight" else "norm_bias"
                elif key.endswith("position_embedding.weight"):
                    kind = "position"
                else:
                    kind = "normal"
                specs.append((key, tuple(p.shape), kind))
    return specs


def _producer(shape, kind, gen, dtype):
    def make():
        if kind == "norm_weight":
            t = torch.ones(shape)
        elif kind == "norm_bias":
            t = torch.zeros(shape)
        else:
            t = torch.empty(shape).normal_(0.0, 0.01 if kind == "position" else 0.02, generator=gen)
        return t.to(dtype)
    return make


def write_random(name, out, seed=0, dtype="float32", variant=None, quiet=False, overwrite=False):
    log = Log(quiet)
    if dtype not in DTYPES:
        raise ConvertError(f"unknown dtype {dtype!r} (float32, float16, bfloat16)")
    torch_dtype = DTYPES[dtype]
    cdir = config_dir(name)
    configs = load_configs(name)
    check_destination(out, overwrite)
    log(f"torchvid convert {__version__}: random '{name}' checkpoint (seed {seed}, {dtype}"
        + (f", variant {variant}" if variant else "") + f") -> {os.path.abspath(out)}")
    t_start = time.time()
    tmp = _make_temp_dir(out)
    grand_total = 0
    try:
        shutil.copyfile(os.path.join(cdir, "model_index.json"), os.path.join(tmp, "model_index.json"))
        os.makedirs(os.path.join(tmp, "scheduler"))
        shutil.copyfile(os.path.join(ASSETS, "configs", "ms-1.7b", "scheduler", "scheduler_config.json"),
                        os.path.join(tmp, "scheduler", "scheduler_config.json"))
        os.makedirs(os.path.join(tmp, "tokenizer"))
        for f in sorted(os.listdir(os.path.join(ASSETS, "tokenizer"))):
            shutil.copyfile(os.path.join(ASSETS, "tokenizer", f), os.path.join(tmp, "tokenizer", f))
        for i, comp in enumerate(("text_encoder", "unet", "vae")):
            folder, st_base, _ = WEIGHT_NAMES[comp]
            os.makedirs(os.path.join(tmp, folder))
            shutil.copyfile(os.path.join(cdir, comp, "config.json"), os.path.join(tmp, folder, "config.json"))
            gen = torch.Generator().manual_seed(int(seed) * 1000003 + i)
            specs = _param_specs(comp, configs[comp])
            items = [(k, (torch_dtype, shape, _producer(shape, kind, gen, torch_dtype))) for k, shape, kind in specs]
            fname = add_variant(st_base + ".safetensors", variant)
            t0 = time.time()
            nbytes = save_file(items, os.path.join(tmp, folder, fname), metadata={"format": "pt"})
            total = sum(_numel(s) for _, s, _ in specs)
            grand_total += total
            log(f"  {folder}/{fname}: {total:,} parameters, {human_bytes(nbytes)} ({time.time() - t0:.1f}s)")
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"done: {grand_total:,} parameters in {time.time() - t_start:.1f}s")
    return grand_total
