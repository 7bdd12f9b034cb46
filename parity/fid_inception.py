"""Reference data for the Rust FID-Inception network, from pytorch-fid's own classes.

Builds pytorch_fid.inception.InceptionV3(output_blocks=[3], resize_input=True,
normalize_input=True, use_fid_inception=True) -- pytorch-fid's 2048-d pool3 network, whose
weights torch-fidelity uses too -- with RANDOM, seeded weights instead of the downloaded
TF-ported ones (no download is possible here), and writes:

  DIR/inception.safetensors
    every parameter and buffer of the network (num_batches_tracked skipped, fc.* skipped since
    pool3 never reaches it), named as in torchvision's Inception3 state dict, which is also how
    pytorch-fid's weight file pt_inception-2015-12-05-6726825d.pth names them:
    "Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch1x1.bn.running_var", ...  (470 tensors, f32)
    input    [4, 3, 64, 64]    f32 in [0, 1]   (upsampled to 299x299 by the network)
    features [4, 2048]         f32             InceptionV3(input)[0] flattened
    input_b  [2, 3, 350, 128]  f32 in [0, 1]   (H downsampled, W upsampled: non-square resize)
    features_b [2, 2048]       f32
    features_f64, features_b_f64   the same computed with the network in float64 (an f64 Rust
                                   run can check these tightly)
    debug.resized [1, 3, 299, 299], debug.block0 [1, 64, 73, 73], debug.block1 [1, 192, 35, 35],
    debug.block2 [1, 768, 17, 17]  f32 intermediates for image 0 of `input` (after resize+2x-1,
                                   and after pytorch-fid's blocks 0, 1, 2), to localise a mismatch

  DIR/frechet.safetensors   (all f64)
    act1 [N1, D], act2 [N2, D]   two random "activation" sets
    mu1, mu2 [D]                 np.mean(act, axis=0)
    sigma1, sigma2 [D, D]        np.cov(act, rowvar=False)   (ddof = 1)
    fid [1]                      pytorch_fid.fid_score.calculate_frechet_distance(mu1, sigma1,
                                 mu2, sigma2)   (scipy.linalg.sqrtm)
    fid_self [1]                 calculate_frechet_distance(mu1, sigma1, mu1, sigma1)  (~0)

Usage: python parity/fid_inception.py --out DIR [--seed 0]
Needs: torch, torchvision, pytorch-fid, scipy, numpy (no network access).
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn

import pytorch_fid.inception as pfi
from pytorch_fid.fid_score import calculate_frechet_distance

from common import write_safetensors


def random_state_dict(g):
    """A seeded random state dict with the keys and shapes of pytorch-fid's weight file.

    FIDInceptionA/C/E_1/E_2 only override forward(), so torchvision's Inception3(num_classes=1008,
    aux_logits=False) -- built by pytorch-fid's own _inception_v3 -- has exactly the keys and
    shapes that fid_inception_v3() loads strictly.
    """
    template = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    with torch.no_grad():
        for m in template.modules():
            if isinstance(m, nn.Conv2d):
                # He-normal keeps activations O(1) through the ~20 conv layers of a path.
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)      # [0.5, 1.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.01)
                m.bias.zero_()
    return template.state_dict()


def build(seed):
    """(wrapper, inception, generator): pytorch-fid's own InceptionV3(use_fid_inception=True).

    pytorch-fid's code runs unmodified -- fid_inception_v3() builds the network and strictly
    load_state_dict()s it -- except that load_state_dict_from_url, looked up as a global of
    pytorch_fid.inception, hands back the random state dict instead of downloading.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    state = random_state_dict(g)
    captured = {}
    original_load, original_build = pfi.load_state_dict_from_url, pfi.fid_inception_v3

    def fake_load(url, progress=True, **kwargs):
        assert url == pfi.FID_WEIGHTS_URL, url
        return state

    def capturing_build():
        captured["net"] = original_build()
        return captured["net"]

    pfi.load_state_dict_from_url, pfi.fid_inception_v3 = fake_load, capturing_build
    try:
        model = pfi.InceptionV3(output_blocks=[3], resize_input=True, normalize_input=True,
                                use_fid_inception=True)
    finally:
        pfi.load_state_dict_from_url, pfi.fid_inception_v3 = original_load, original_build
    net = captured["net"]
    assert type(net.Mixed_7c) is pfi.FIDInceptionE_2 and type(net.Mixed_5b) is pfi.FIDInceptionA
    model.eval()
    net.eval()
    return model, net, g


def state_tensors(model, net):
    """Named tensors of the network, Inception3 names, checked to be exactly the wrapper's."""
    named = {k: v for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
    wrapper = {k: v for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    ptrs = {v.data_ptr() for v in named.values()}
    assert len(named) == len(wrapper) == 470, (len(named), len(wrapper))
    assert ptrs == {v.data_ptr() for v in wrapper.values()}, "wrapper and Inception3 tensors differ"
    return named


def images(n, h, w, g):
    """Structured test images in [0, 1]: smooth colour blobs + fine noise, per-image brightness
    and contrast. (I.i.d. uniform noise images have nearly identical pooled statistics, so their
    pool3 features differ by ~1% only; these differ by ~30%, so the test sees the input.)"""
    smooth = torch.nn.functional.interpolate(torch.rand(n, 3, 6, 6, generator=g), size=(h, w),
                                             mode="bicubic", align_corners=False)
    fine = torch.rand(n, 3, h, w, generator=g)
    bright = torch.rand(n, 1, 1, 1, generator=g)
    contrast = torch.rand(n, 1, 1, 1, generator=g) * 0.8 + 0.2
    x = 0.5 + contrast * (0.75 * smooth + 0.25 * fine - 0.5) + (bright - 0.5) * 0.5
    return x.clamp(0, 1).contiguous()


def features(model, x):
    with torch.no_grad():
        out = model(x)
    assert len(out) == 1 and out[0].shape[1:] == (2048, 1, 1), out[0].shape
    return out[0].flatten(1)


def debug_intermediates(model, x):
    """Image 0 after resize + 2x-1 and after pytorch-fid's blocks 0, 1, 2."""
    out = {}
    with torch.no_grad():
        h = torch.nn.functional.interpolate(x[:1], size=(299, 299), mode="bilinear",
                                            align_corners=False)
        h = 2 * h - 1
        out["debug.resized"] = h.clone()
        for i in range(3):
            h = model.blocks[i](h)
            out[f"debug.block{i}"] = h.clone()
    return out


def frechet_case(g, n1=600, n2=500, d=128):
    """Two correlated, full-rank random activation sets and their pytorch-fid statistics."""
    f64, eye = torch.float64, torch.eye(d, dtype=torch.float64)
    a1 = torch.randn(d, d, generator=g, dtype=f64) / d ** 0.5
    a2 = torch.randn(d, d, generator=g, dtype=f64) / d ** 0.5
    act1 = (torch.randn(n1, d, generator=g, dtype=f64) @ (a1 + eye)).abs()
    act2 = (torch.randn(n2, d, generator=g, dtype=f64) @ (a2 + 0.8 * eye) + 0.3).abs()
    act1_np, act2_np = act1.numpy(), act2.numpy()
    mu1, mu2 = np.mean(act1_np, axis=0), np.mean(act2_np, axis=0)
    sigma1, sigma2 = np.cov(act1_np, rowvar=False), np.cov(act2_np, rowvar=False)
    fid = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
    fid_self = calculate_frechet_distance(mu1, sigma1, mu1, sigma1)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float64)))
    return {"act1": act1, "act2": act2, "mu1": t(mu1), "sigma1": t(sigma1), "mu2": t(mu2),
            "sigma2": t(sigma2), "fid": t([fid]), "fid_self": t([fid_self])}, fid


def folder_case(model, out, g):
    """PNG files of two sizes (RGB and grey) in OUT/images, and pytorch-fid's own activations of
    them (its PIL loading, ToTensor, batch size 1): what `ebgan fid` reads from an image folder."""
    from PIL import Image
    from pytorch_fid.fid_score import get_activations

    folder = os.path.join(out, "images")
    os.makedirs(folder, exist_ok=True)
    files = []
    for i, (h, w) in enumerate([(64, 64), (64, 64), (48, 80)]):
        x = (images(1, h, w, g)[0] * 255).round().byte().permute(1, 2, 0).numpy()
        img = Image.fromarray(x) if i != 1 else Image.fromarray(x[:, :, 0])  # one grey image
        files.append(os.path.join(folder, f"{i}.png"))
        img.save(files[-1])
    acts = get_activations(files, model, batch_size=1, dims=2048, device="cpu", num_workers=0)
    return {"folder_features": torch.from_numpy(acts).float()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    t0 = time.time()

    model, net, g = build(args.seed)
    x = images(4, 64, 64, g)
    x_b = images(2, 350, 128, g)
    f, f_b = features(model, x), features(model, x_b)
    dbg = debug_intermediates(model, x)
    tensors = {k: v.clone() for k, v in state_tensors(model, net).items()}
    model64 = model.double()
    f64, f_b64 = features(model64, x.double()), features(model64, x_b.double())
    model.float()

    rel = ((f.double() - f64).abs().max() / f64.abs().max()).item()
    tensors.update({"input": x, "features": f, "input_b": x_b, "features_b": f_b,
                    "features_f64": f64, "features_b_f64": f_b64, **dbg})
    write_safetensors(os.path.join(args.out, "inception.safetensors"), tensors)

    fr, fid = frechet_case(g)
    write_safetensors(os.path.join(args.out, "frechet.safetensors"), fr)
    write_safetensors(os.path.join(args.out, "folder.safetensors"), folder_case(model, args.out, g))

    print(json.dumps({
        "seed": args.seed,
        "features_mean": f.mean().item(), "features_max": f.max().item(),
        "features_rel_spread": (f.std(0).mean() / f.abs().mean()).item(),
        "features_nonzero_frac": (f > 0).double().mean().item(),
        "f32_vs_f64_max_rel": rel, "fid": float(fid),
        "fid_self": float(fr["fid_self"][0]), "seconds": round(time.time() - t0, 1),
    }))


if __name__ == "__main__":
    main()
