"""Shared helpers for the converter tests (run: /usr/bin/python3 -m unittest discover -s tests/convert -t .)."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

from convert.export import convert  # noqa: E402
from convert.safetensors_io import load_file  # noqa: E402

REF = os.path.join(ROOT, "tests", "fixtures", "reference")
PIPELINE = os.path.join(REF, "models", "pipeline")
GOLDEN = os.path.join(REF, "models", "golden.safetensors")
TOL = 1e-4

torch.set_num_threads(2)

_golden = None


def golden():
    global _golden
    if _golden is None:
        _golden = load_file(GOLDEN)
    return _golden


def run_unet_case(unet, case):
    """(output, golden output) of ``unet`` on the golden inputs of ``case``, without autograd."""
    g = golden()
    with torch.no_grad():
        out = unet(g[f"unet/{case}/sample"], g[f"unet/{case}/timestep"], g[f"unet/{case}/encoder_hidden_states"])
    return out, g[f"unet/{case}/out"]


def make_tmp(prefix):
    d = tempfile.mkdtemp(prefix=f"torchvid-convert-{prefix}-")
    atexit.register(shutil.rmtree, d, True)
    return d


_converted = {}


def converted(dtype="float32", attention="auto"):
    """Convert the reference tiny pipeline once per (dtype, attention) per test process."""
    key = (dtype, attention)
    if key not in _converted:
        out = os.path.join(make_tmp("model"), "model")
        convert(PIPELINE, out, dtype=dtype, attention=attention, quiet=True)
        _converted[key] = out
    return _converted[key]


def run_cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = TOOLS + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "convert", *args], cwd=TOOLS, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def clone_checkpoint(dst_root, src=PIPELINE):
    """A writable copy of a checkpoint folder whose files are symlinks to the originals."""
    dst = os.path.join(dst_root, "ckpt")
    for dirpath, _dirs, files in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for f in files:
            os.symlink(os.path.join(dirpath, f), os.path.join(dst, rel, f))
    return dst


def replace_file(path):
    """Turn a symlinked file into a real one we may rewrite."""
    if os.path.islink(path):
        os.unlink(path)


def max_abs(a, b):
    return (a.float() - b.float()).abs().max().item()
