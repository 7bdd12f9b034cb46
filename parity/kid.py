"""Reference of KID (Binkowski et al. 2018): torch-fidelity 0.4.0's own kid_features_to_metric
(unbiased MMD^2 under the cubic polynomial kernel (a.b / D + 1)^3, the mean over random subsets)
on the exported features in float64, with subsets of the whole set's size.

Usage: python parity/kid.py OUT/CASE (reads CASE.json and CASE.safetensors, writes
CASE.reference.safetensors).
"""
import json
import sys

from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

from common import read_safetensors
from scores import answer


def main(base):
    with open(base + ".json") as f:
        cfg = json.load(f)
    t = read_safetensors(base + ".safetensors")
    a, b = t["features_a"].double(), t["features_b"].double()
    kid = kid_features_to_metric(a, b, kid_subsets=cfg["subsets"], kid_subset_size=min(len(a), len(b)),
                                 kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1, rng_seed=2020, verbose=False)
    answer(base, {"kid": kid[KEY_METRIC_KID_MEAN]})


if __name__ == "__main__":
    main(sys.argv[1])
