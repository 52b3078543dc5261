"""`python3 -m convert --lora IN.pt OUT.safetensors`: a pickled LoRA state dict (.pt / .bin, e.g.
T2V-Turbo's unet_lora.pt) rewritten as safetensors, which torchvid's loadLoraWeights reads.

The pickle is opened with torch.load(weights_only=True): only tensors and plain containers are
rebuilt, no code from the file runs. Keys and values are copied unchanged (torchvid maps PEFT,
diffusers and kohya names itself); the output is written to a temporary file and renamed.
"""

import os
import tempfile

from . import ConvertError
from .checkpoint import _load_bin
from .safetensors_io import save_file


def convert_lora(src, dst, overwrite=False, quiet=False):
    if not os.path.isfile(src):
        raise ConvertError(f"LoRA file not found: {src} (pass the .pt/.bin file to convert)")
    if os.path.isdir(dst):
        raise ConvertError(f"{dst} is a folder: pass the .safetensors FILE to write, e.g. {os.path.join(dst, 'lora.safetensors')}")
    if os.path.lexists(dst) and not overwrite:
        raise ConvertError(f"{dst} exists (pass --overwrite to replace it)")
    state = _load_bin(src)
    if not state:
        raise ConvertError(f"{src}: the state dict is empty: not a LoRA")
    tensors = {k: v.detach().contiguous() for k, v in state.items()}
    parent = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dst) + ".tmp-", dir=parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt", "converted_from": os.path.basename(src)})
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if not quiet:
        print(f"wrote {dst}: {len(tensors)} tensors from {src}")
