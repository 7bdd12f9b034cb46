"""Reference of the sample scores (paper.md §3): I' = E_x KL(p(y|x) || p(y)), the printed
variant (E_x KL(p(y) || p(y|x)))^2 and IS = exp(I') from log-probabilities with numpy in
float64; FID with pytorch-fid's own calculate_frechet_distance (scipy's sqrtm) on the mean and
covariance (np.cov, N - 1) of two feature sets.

Usage: python parity/scores.py OUT/CASE (reads CASE.safetensors, writes CASE.reference.safetensors).
"""
import sys

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.special import logsumexp

from common import read_safetensors, write_safetensors


def sample_scores(log_yx):
    """I', the printed I' and IS of log-probabilities [N, C] (numpy, float64)."""
    log_y = logsumexp(log_yx, axis=0, keepdims=True) - np.log(log_yx.shape[0])
    p_yx, p_y = np.exp(log_yx), np.exp(log_y)
    i_prime = np.mean(np.sum(p_yx * (log_yx - log_y), axis=1))
    printed = np.mean(np.sum(p_y * (log_y - log_yx), axis=1)) ** 2
    return {"i_prime": i_prime, "i_prime_printed": printed, "inception_score": np.exp(i_prime)}


def frechet(a, b):
    """pytorch-fid's Frechet distance of two feature sets [N, D] (numpy, float64)."""
    return calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def answer(base, values):
    out = {f"score/{k}": torch.tensor([v], dtype=torch.float64) for k, v in values.items()}
    write_safetensors(base + ".reference.safetensors", out)


def main(base):
    t = read_safetensors(base + ".safetensors")
    values = sample_scores(t["log_probs"].double().numpy())
    values["fid"] = frechet(t["features_a"].double().numpy(), t["features_b"].double().numpy())
    answer(base, values)


if __name__ == "__main__":
    main(sys.argv[1])
