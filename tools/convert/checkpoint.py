"""Reading a diffusers-format checkpoint folder: configs, weight files, strict key/shape checks."""

import json
import os
from collections import OrderedDict

import torch

from . import ConvertError
from .safetensors_io import load_file, read_header

# component -> (folder, safetensors base name, .bin base name)
WEIGHT_NAMES = {
    "unet": ("unet", "diffusion_pytorch_model", "diffusion_pytorch_model"),
    "vae": ("vae", "diffusion_pytorch_model", "diffusion_pytorch_model"),
    "text_encoder": ("text_encoder", "model", "pytorch_model"),
}

# Keys some real checkpoints carry that are not parameters of the model (buffers that older
# library versions saved).  They are dropped (and reported), exactly as transformers does.
IGNORED_KEYS = {
    "text_encoder": ("text_model.embeddings.position_ids",),
}

# diffusers < 0.17 VAE mid-block attention names (AttentionBlock) -> current Attention names.
_LEGACY_VAE_ATTN = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def add_variant(filename, variant):
    if not variant:
        return filename
    parts = filename.split(".")
    return ".".join(parts[:-1] + [variant] + parts[-1:])


def read_json(path, what):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConvertError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as e:
        raise ConvertError(f"{what} unreadable ({path}): {e}") from None


def find_weights(src, component, variant=None):
    """Return (kind, [paths]) for a component; kind is 'safetensors' or 'bin'.  Sharded index
    files (``*.index.json``) are followed.  safetensors is preferred over .bin."""
    folder, st_base, bin_base = WEIGHT_NAMES[component]
    d = os.path.join(src, folder)
    candidates = [
        ("safetensors", add_variant(st_base + ".safetensors", variant)),
        ("safetensors", add_variant(st_base + ".safetensors.index.json", variant)),
        ("bin", add_variant(bin_base + ".bin", variant)),
        ("bin", add_variant(bin_base + ".bin.index.json", variant)),
    ]
    for kind, name in candidates:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            if name.endswith(".index.json"):
                index = read_json(p, f"{component} weight index")
                shards = sorted(set((index.get("weight_map") or {}).values()))
                if not shards:
                    raise ConvertError(f"{p}: weight index lists no shard files")
                paths = [os.path.join(d, s) for s in shards]
                for s in paths:
                    if not os.path.isfile(s):
                        raise ConvertError(f"{p}: shard {os.path.basename(s)} is missing")
                return kind, paths
            return kind, [p]
    tried = ", ".join(n for _, n in candidates)
    hint = ""
    if not variant and os.path.isdir(d):
        others = [n for n in os.listdir(d) if ".fp16." in n]
        if others:
            hint = " (an fp16 variant exists: pass --variant fp16)"
    raise ConvertError(f"{component}: no weights found in {d} (looked for {tried}){hint}")


def _load_bin(path):
    import inspect
    if "weights_only" not in inspect.signature(torch.load).parameters:
        raise ConvertError(f"{path}: refusing to unpickle a .bin checkpoint without weights_only "
                           f"(torch {torch.__version__} is too old; convert it to safetensors)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated zip, disallowed globals ...
        raise ConvertError(f"{path}: cannot load .bin checkpoint: {str(e).splitlines()[0] if str(e) else e}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConvertError(f"{path}: .bin checkpoint is not a flat state dict of tensors")
    return OrderedDict(obj)


def read_shapes(kind, paths):
    """{key: shape} without loading tensor data for safetensors (headers only)."""
    shapes = OrderedDict()
    for p in paths:
        if kind == "safetensors":
            header = read_header(p)[0]
            items = [(k, tuple(v["shape"])) for k, v in header.items()]
        else:
            items = [(k, tuple(v.shape)) for k, v in _load_bin(p).items()]
        for k, s in items:
            if k in shapes:
                raise ConvertError(f"{p}: key {k} appears in more than one shard")
            shapes[k] = s
    return shapes


def load_state_dict(kind, paths):
    sd = OrderedDict()
    for p in paths:
        part = load_file(p) if kind == "safetensors" else _load_bin(p)
        for k, v in part.items():
            if k in sd:
                raise ConvertError(f"{p}: key {k} appears in more than one shard")
            sd[k] = v
    return sd


def normalize_keys(component, mapping):
    """Rename legacy keys / drop known non-parameter keys.  Works on {key: tensor} or {key: shape}.
    Returns (new_mapping, notes)."""
    notes = []
    out = OrderedDict()
    ignored = IGNORED_KEYS.get(component, ())
    renamed = 0
    for k, v in mapping.items():
        if k in ignored:
            notes.append(f"ignored non-parameter key {k}")
            continue
        if component == "vae":
            parts = k.split(".")
            # e.g. encoder.mid_block.attentions.0.query.weight
            if len(parts) >= 6 and parts[1] == "mid_block" and parts[2] == "attentions" and parts[4] in _LEGACY_VAE_ATTN:
                k = ".".join(parts[:4] + [_LEGACY_VAE_ATTN[parts[4]]] + parts[5:])
                renamed += 1
                if parts[-1] == "weight":
                    shape = tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v)
                    if len(shape) == 4 and shape[2:] == (1, 1):  # 1x1 conv stored as linear
                        v = v.reshape(shape[:2]) if isinstance(v, torch.Tensor) else shape[:2]
        out[k] = v
    if renamed:
        notes.append(f"renamed {renamed} legacy VAE attention keys (query/key/value/proj_attn)")
    return out, notes


def _fmt_list(items, limit=8):
    items = list(items)
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f", ... and {len(items) - limit} more"
    return shown


def check_keys(component, expected, found, where):
    """expected/found: {key: shape}.  Raises ConvertError listing missing/unexpected/mismatched keys."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [f"{k} (checkpoint {list(found[k])}, model {list(expected[k])})"
                  for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key{'s' if len(missing) > 1 else ''}: {_fmt_list(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key{'s' if len(unexpected) > 1 else ''}: "
                        f"{_fmt_list(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch{'es' if len(mismatched) > 1 else ''}: "
                        f"{_fmt_list(mismatched)}")
    raise ConvertError(f"{component}: weights in {where} do not match the model built from its config.json: "
                       + "; ".join(problems))


def model_shapes(*modules):
    shapes = OrderedDict()
    for m in modules:
        for name, p in m.named_parameters():
            shapes[name] = tuple(p.shape)
        for name, b in m.named_buffers():
            shapes[name] = tuple(b.shape)
    return shapes


def materialize(module, state_dict, dtype):
    """Replace every parameter of ``module`` (possibly on the meta device) by the checkpoint tensor
    of the same name cast to ``dtype``.  Shapes must already be checked."""
    for name, _p in list(module.named_parameters()):
        path, _, pname = name.rpartition(".")
        owner = module.get_submodule(path) if path else module
        t = state_dict[name].to(dtype=dtype).contiguous()
        owner._parameters[pname] = torch.nn.Parameter(t, requires_grad=False)
    return module


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())
