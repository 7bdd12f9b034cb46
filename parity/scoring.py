"""Reference of the MNIST scoring path (paper.md §3): the scoring ConvNet (conv3x3(32), ReLU,
max-pool 2, conv3x3(64), ReLU, max-pool 2, fc(128), ReLU = the FID features, fc(10), log-softmax;
evaluation mode) in plain torch.nn.functional ops on the exported weights, then I', the printed
I', IS (scores.sample_scores) and the Frechet distance of the samples' features to the reference
images' (pytorch-fid's formula).

Usage: python parity/scoring.py OUT/CASE (reads CASE.safetensors, writes CASE.reference.safetensors).
"""
import sys

import torch
import torch.nn.functional as F

from common import read_safetensors
from scores import answer, frechet, sample_scores


def classifier(x, p):
    """Log-probabilities [N, 10] and features [N, 128] of flat images [N, 784] in [-1, 1]."""
    h = x.view(-1, 1, 28, 28)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["conv1.weight"], p["conv1.bias"], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1)), 2)
    features = F.relu(F.linear(h.flatten(1), p["fc1.weight"], p["fc1.bias"]))
    return F.log_softmax(F.linear(features, p["fc2.weight"], p["fc2.bias"]), -1), features


def main(base):
    t = read_safetensors(base + ".safetensors")
    p = {k[len("classifier/"):]: v for k, v in t.items() if k.startswith("classifier/")}
    with torch.no_grad():
        log_probs, features = classifier(t["samples"], p)
        _, reference = classifier(t["reference"], p)
    values = sample_scores(log_probs.double().numpy())
    values["fid"] = frechet(features.double().numpy(), reference.double().numpy())
    answer(base, values)


if __name__ == "__main__":
    main(sys.argv[1])
