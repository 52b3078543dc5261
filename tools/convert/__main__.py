"""CLI:  python3 -m convert SRC DST [--dtype D] [--variant fp16] [--attention auto|sdpa|plain] [--quiet]
       python3 -m convert --random tiny|ms-1.7b|zeroscope-576w OUT [--seed N] [--dtype D] [--variant fp16]
       python3 -m convert --lora IN.pt OUT.safetensors [--overwrite]

Exit codes: 0 ok, 1 failure (one-line error with the fix; traceback with --verbose), 2 usage error,
130 interrupted (Ctrl-C; nothing is left behind).
"""

import argparse
import os
import sys

if __package__ in (None, ""):  # allow `python3 tools/convert/__main__.py` too
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "convert"

from . import __version__  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python3 -m convert",
        description="Convert a diffusers text-to-video checkpoint folder into a torchvid model folder, "
                    "or (--random) write a random-weight diffusers checkpoint.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="SRC DST (convert) or OUT (--random)")
    p.add_argument("--random", metavar="CONFIG", choices=("tiny", "ms-1.7b", "zeroscope-576w"),
                   help="write a random-weight checkpoint for CONFIG (tiny, ms-1.7b, zeroscope-576w) to OUT")
    p.add_argument("--lora", action="store_true",
                   help="convert a pickled LoRA state dict (.pt/.bin, read with weights_only) to safetensors: --lora IN OUT")
    p.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="export dtype (default float32); with --random, the dtype of the written weights")
    p.add_argument("--variant", choices=("fp16",), default=None,
                   help="read (or with --random: write) the fp16 variant weight files")
    p.add_argument("--attention", choices=("auto", "sdpa", "plain"), default="auto",
                   help="attention implementation baked into the export (auto: sdpa when this torch has it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty destination")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--verbose", action="store_true", help="print a traceback on failure")
    p.add_argument("--version", action="version", version=f"torchvid convert {__version__}")
    args = p.parse_args(argv)
    if args.random and args.lora:
        p.error("--random and --lora do not go together")
    if args.lora:
        if len(args.paths) != 2:
            p.error("--lora takes the pickled LoRA and the .safetensors file to write: --lora IN.pt OUT.safetensors")
    elif args.random:
        if len(args.paths) != 1:
            p.error("--random CONFIG takes exactly one output folder: --random CONFIG OUT")
    elif len(args.paths) != 2:
        p.error("expected SRC DST (or --random CONFIG OUT)")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"error: torch is not installed for {sys.executable}", file=sys.stderr)
        return 1
    try:
        if args.lora:
            from .lora import convert_lora
            convert_lora(args.paths[0], args.paths[1], overwrite=args.overwrite, quiet=args.quiet)
        elif args.random:
            from .random_ckpt import write_random
            write_random(args.random, args.paths[0], seed=args.seed, dtype=args.dtype, variant=args.variant,
                         quiet=args.quiet, overwrite=args.overwrite)
        else:
            from .export import convert
            convert(args.paths[0], args.paths[1], dtype=args.dtype, variant=args.variant,
                    attention=args.attention, quiet=args.quiet, overwrite=args.overwrite)
        return 0
    except Exception as e:  # noqa: BLE001 - every failure is reported as one line
        from .messages import is_interrupt
        if is_interrupt(e):
            raise KeyboardInterrupt from None
        if args.verbose:
            import traceback
            traceback.print_exc()
        from .messages import describe
        print("error: " + describe(e, args.paths[-1] if args.paths else None), file=sys.stderr)
        return 1


def run():
    """main() with Ctrl-C anywhere (even while torch imports) as one line and exit code 130."""
    from .messages import is_interrupt
    try:
        return main()
    except (KeyboardInterrupt, RuntimeError) as e:
        if not is_interrupt(e):
            raise
        print("error: interrupted (Ctrl-C): nothing was written (the partial output is removed); run the command again to convert",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
