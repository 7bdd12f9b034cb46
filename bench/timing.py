"""Shared timing loop of the PyTorch reference benches."""
import time

import torch


def steps_per_second(step, steps, warmup, device):
    """Calls `step` `warmup` times, then times `steps` calls (waiting for queued CUDA work)."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)
