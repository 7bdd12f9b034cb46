"""Converts pytorch-fid's FID-Inception weights (pt_inception-2015-12-05-6726825d.pth, a torch
state dict) into the safetensors file `ebgan fid` and the image experiments load (--inception,
$EBGAN_INCEPTION). Usage: python parity/convert_inception.py SRC.pth DST.safetensors"""
import sys

import torch

from common import write_safetensors

state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
tensors = {k: v.float() for k, v in state.items()
           if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
assert len(tensors) == 470, f"{len(tensors)} tensors: not pytorch-fid's Inception weights"
write_safetensors(sys.argv[2], tensors)
print(f"wrote {sys.argv[2]} ({len(tensors)} tensors)")
