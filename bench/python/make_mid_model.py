"""Writes the mid-size benchmark model: random weights for the configs in a folder such as
/work/shared/bench-configs/mid (ms-1.7b's architecture scaled down), as a diffusers checkpoint,
then converts it into a torchvid model folder.

usage: cd tools && /usr/bin/python3 ../bench/python/make_mid_model.py CONFIG_DIR CHECKPOINT_OUT MODEL_OUT
"""
import os
import shutil
import sys

sys.path.insert(0, os.getcwd())
from convert import random_ckpt  # noqa: E402
from convert.__main__ import main as convert_main  # noqa: E402

config_dir, ckpt, model = sys.argv[1:4]
random_ckpt.CONFIG_DIRS["bench"] = os.path.abspath(config_dir)  # an absolute path wins in os.path.join
random_ckpt.write_random("bench", ckpt, seed=0, overwrite=True)
shutil.copyfile(os.path.join(config_dir, "scheduler", "scheduler_config.json"), os.path.join(ckpt, "scheduler", "scheduler_config.json"))
sys.exit(convert_main([ckpt, model, "--overwrite"]))
