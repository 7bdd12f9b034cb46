"""Shared timing loop of the PyTorch reference benches."""
import time

import torch


def like_ours(conv, tf32):
    """The precision and cuDNN settings the Rust benches run under: TF32 in matmuls and
    convolutions only with `--tf32` (`--matmul-precision high`; full FP32 by default), and cuDNN's
    benchmark mode for the convolutional step (ConvGan turns it on for a run's fixed shapes).
    Returns them for the row."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = conv
    return {"tf32": tf32, "cudnn_benchmark": conv}


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
