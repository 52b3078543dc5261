"""Checkpoint folder -> torchvid model folder (TorchScript modules + manifest)."""

import hashlib
import json
import os
import shutil
import tempfile
import time

import torch

from . import ConvertError, __version__
from .checkpoint import (check_keys, count_parameters, find_weights, load_state_dict, materialize, model_shapes,
                         normalize_keys, read_json, read_shapes)
from .models.clip import CLIPTextModel
from .models.common import resolve_attention
from .models.unet3d import UNet3DConditionModel
from .models.vae import AutoencoderKLDecoder, AutoencoderKLEncoder

FORMAT = "torchvid-model"
FORMAT_VERSION = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
OPTIONAL_TOKENIZER_FILES = ("added_tokens.json",)


def human_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


EXPECTED_CLASSES = {"unet": ("UNet3DConditionModel",), "vae": ("AutoencoderKL",),
                    "text_encoder": ("CLIPTextModel",)}


def check_config_class(component, config):
    """Refuse configs of another model class early (e.g. a 2D UNet) with a clear message."""
    if not isinstance(config, dict):
        raise ConvertError(f"{component}/config.json is not a JSON object")
    if component == "text_encoder":
        names = config.get("architectures") or []
        model_type = config.get("model_type")
        if (names and not any(n in EXPECTED_CLASSES[component] for n in names)) or \
                (model_type not in (None, "clip_text_model")):
            raise ConvertError(f"text_encoder/config.json describes {names or model_type}, expected CLIPTextModel")
        return
    name = config.get("_class_name")
    if name is not None and name not in EXPECTED_CLASSES[component]:
        raise ConvertError(f"{component}/config.json describes {name}, expected {EXPECTED_CLASSES[component][0]}")


def build_modules(component, config, attn_kind, device="meta"):
    """The module(s) for one checkpoint component, built from its config (on ``device``)."""
    check_config_class(component, config)
    dd = {"device": torch.device(device)}
    try:
        if component == "unet":
            return {"unet": UNet3DConditionModel(config, attn_kind, dd=dd)}
        if component == "text_encoder":
            return {"text_encoder": CLIPTextModel(config, attn_kind, dd=dd)}
        if component == "vae":
            return {"vae_encoder": AutoencoderKLEncoder(config, attn_kind, dd=dd),
                    "vae_decoder": AutoencoderKLDecoder(config, attn_kind, dd=dd)}
    except ConvertError:
        raise
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError, KeyError) as e:
        # A config value of the wrong type or range fails deep inside a module constructor: name the file.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConvertError(f"{component}/config.json: cannot build the {component} from it ({type(e).__name__}: {first}); "
                           f"a value there has the wrong type or range: compare it with the original model's config.json") from None
    raise ValueError(component)


def _rel(path, root):
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path


class Log:
    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, msg):
        if not self.quiet:
            print(msg, flush=True)


def _check_source(src):
    if not os.path.isdir(src):
        raise ConvertError(f"source checkpoint folder not found: {src}")
    for sub in ("unet", "vae", "text_encoder"):
        if not os.path.isfile(os.path.join(src, sub, "config.json")):
            raise ConvertError(f"{src} is not a diffusers text-to-video checkpoint: {sub}/config.json missing")
    for name in ("vocab.json", "merges.txt"):
        if not os.path.isfile(os.path.join(src, "tokenizer", name)):
            raise ConvertError(f"{src}: tokenizer/{name} missing")
    if not os.path.isfile(os.path.join(src, "scheduler", "scheduler_config.json")):
        raise ConvertError(f"{src}: scheduler/scheduler_config.json missing")


def _make_temp_dir(dst):
    parent = os.path.dirname(os.path.abspath(dst)) or "."
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(dst)) + ".tmp-", dir=parent)


def _publish(tmp, dst, overwrite):
    """Atomically move the finished temp folder to dst."""
    dst = os.path.abspath(dst)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700
    if os.path.lexists(dst):
        if os.path.isdir(dst) and not os.path.islink(dst) and not os.listdir(dst):
            os.rmdir(dst)
        elif overwrite:
            old = tempfile.mkdtemp(prefix="." + os.path.basename(dst) + ".old-", dir=os.path.dirname(dst))
            os.rmdir(old)
            os.rename(dst, old)
            os.rename(tmp, dst)
            shutil.rmtree(old, ignore_errors=True)
            return
        else:
            raise ConvertError(f"destination exists and is not empty: {dst} (pass --overwrite to replace it)")
    os.rename(tmp, dst)


def check_destination(dst, overwrite):
    dst = os.path.abspath(dst)
    if os.path.lexists(dst) and not overwrite:
        if not (os.path.isdir(dst) and not os.path.islink(dst) and not os.listdir(dst)):
            raise ConvertError(f"destination exists and is not empty: {dst} (pass --overwrite to replace it)")


def convert(src, dst, dtype="float32", variant=None, attention="auto", quiet=False, overwrite=False):
    """Convert the diffusers checkpoint folder ``src`` into the model folder ``dst``. Returns the manifest."""
    log = Log(quiet)
    t_start = time.time()
    if dtype not in DTYPES:
        raise ConvertError(f"unknown dtype {dtype!r} (float32, float16, bfloat16)")
    torch_dtype = DTYPES[dtype]
    attn_kind = resolve_attention(attention)
    src = os.path.abspath(src)
    _check_source(src)
    check_destination(dst, overwrite)

    configs = {c: read_json(os.path.join(src, c, "config.json"), f"{c} config") for c in
               ("text_encoder", "unet", "vae")}
    model_index_path = os.path.join(src, "model_index.json")
    model_index = read_json(model_index_path, "model_index.json") if os.path.isfile(model_index_path) else None

    log(f"torchvid convert {__version__}: {src} -> {os.path.abspath(dst)}")
    log(f"  torch {torch.__version__}, export dtype {dtype}, attention {attn_kind}"
        + (f", variant {variant}" if variant else ""))

    # Phase 1: locate every weight file and check names and shapes before writing anything.
    plan = {}
    for comp in ("text_encoder", "unet", "vae"):
        kind, paths = find_weights(src, comp, variant)
        modules = build_modules(comp, configs[comp], attn_kind, "meta")
        expected = model_shapes(*modules.values())
        shapes, _notes = normalize_keys(comp, read_shapes(kind, paths))
        where = ", ".join(_rel(p, src) for p in paths)
        check_keys(comp, expected, shapes, where)
        size = sum(os.path.getsize(p) for p in paths)
        plan[comp] = (kind, paths, where, size)
        log(f"  checked {comp}: {len(expected)} tensors, {sum(_numel(s) for s in expected.values()):,} "
            f"parameters in {where} ({human_bytes(size)})")

    tmp = _make_temp_dir(dst)
    try:
        components = {}
        files_used = {}
        step = 0
        for comp in ("text_encoder", "unet", "vae"):
            kind, paths, where, size = plan[comp]
            files_used[comp] = [_rel(p, src) for p in paths]
            t0 = time.time()
            sd, notes = normalize_keys(comp, load_state_dict(kind, paths))
            for n in notes:
                log(f"  {comp}: {n}")
            modules = build_modules(comp, configs[comp], attn_kind, "meta")
            for name, module in modules.items():
                step += 1
                materialize(module, sd, torch_dtype)
                module.eval()
                scripted = torch.jit.script(module)
                fname = f"{name}.pt"
                out = os.path.join(tmp, fname)
                torch.jit.save(scripted, out)
                nbytes = os.path.getsize(out)
                components[name] = {"file": fname, "sha256": sha256_file(out), "bytes": nbytes,
                                    "parameters": count_parameters(module)}
                log(f"  [{step}/4] {fname}: {components[name]['parameters']:,} parameters, "
                    f"{human_bytes(nbytes)} ({time.time() - t0:.1f}s)")
                del scripted, module
            del sd, modules

        os.makedirs(os.path.join(tmp, "tokenizer"))
        for name in TOKENIZER_FILES + OPTIONAL_TOKENIZER_FILES:
            p = os.path.join(src, "tokenizer", name)
            if os.path.isfile(p):
                shutil.copyfile(p, os.path.join(tmp, "tokenizer", name))
            elif name in TOKENIZER_FILES:
                log(f"  warning: tokenizer/{name} missing in the checkpoint")
        os.makedirs(os.path.join(tmp, "scheduler"))
        shutil.copyfile(os.path.join(src, "scheduler", "scheduler_config.json"),
                        os.path.join(tmp, "scheduler", "scheduler_config.json"))
        os.makedirs(os.path.join(tmp, "configs"))
        for comp in ("unet", "vae", "text_encoder"):
            shutil.copyfile(os.path.join(src, comp, "config.json"), os.path.join(tmp, "configs", comp + ".json"))
        if model_index is not None:
            shutil.copyfile(model_index_path, os.path.join(tmp, "configs", "model_index.json"))

        manifest = {
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            "source": {"path": src, "modelIndex": model_index, "variant": variant, "files": files_used},
            "dtype": dtype,
            "torchVersion": torch.__version__,
            "attention": attn_kind,
            "components": components,
            "createdBy": f"torchvid convert {__version__}",
        }
        # manifest.json is written last: a folder without it is never complete.
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        _publish(tmp, dst, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(c["bytes"] for c in components.values())
    log(f"done: {os.path.abspath(dst)} ({human_bytes(total)} of TorchScript, {time.time() - t_start:.1f}s)")
    return manifest


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n
