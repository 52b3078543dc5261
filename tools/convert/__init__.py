"""torchvid checkpoint converter: diffusers text-to-video checkpoints -> TorchScript model folder.

Requires only Python 3.8+ and torch >= 1.13.  Run as ``python3 -m convert`` from ``tools/``.
"""

__version__ = "0.1.0"


class ConvertError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""
