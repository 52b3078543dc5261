"""Writes a scripted nn.Linear(4, 4) (the tiny module of bench/native.ts) to the path given."""
import sys

import torch

torch.manual_seed(0)
torch.jit.save(torch.jit.script(torch.nn.Linear(4, 4)), sys.argv[1])
