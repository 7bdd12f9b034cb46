"""PyTorch reference of the convolutional step (paper §4.3-4.4, paper.md §5) with plain torch.nn.functional
ops and torch.optim: DCGAN's generator (transposed 4x4 convolutions, batch norm, ReLU, tanh) or the
ImageNet one (noise planes at every upsampling, a 3x3 output convolution), EBGAN's
convolutional auto-encoder D (LeakyReLU 0.2 encoder with batch norm after its first layer, ReLU
decoder with a linear output; energy ||Dec(Enc(x)) - x||) or DCGAN's logistic D; every batch
norm in training mode, updating its running statistics. One D step on real and detached fakes,
then one G step through the updated D on the same fakes (PT on the encoder output).
BEGAN (arXiv 1703.10717): energy mean |x - D(x)|^eta per image, L_D = L(x) - k_t L(G(z)),
L_G = L(G(z)), k_t moved from both energies by D before its update. MAGAN (arXiv 1704.03817):
D alone on real data (L_D = E(x)) for its pretraining epoch, then EBGAN's losses at a margin
adapted at epoch ends (common.MaganMargin).

Usage: python parity/conv.py OUT/CASE  (reads CASE.json and CASE.safetensors, writes
CASE.reference.safetensors keyed like the Rust side).
"""
import sys

import torch
import torch.nn.functional as F

from common import reproducible
from common import MaganMargin, began_k, load_case, moments, optimizer, paper_step
from common import write_safetensors


def bn(h, p, name):
    return F.batch_norm(h, p[f"{name}.running_mean"], p[f"{name}.running_var"], p[f"{name}.weight"],
                        p[f"{name}.bias"], training=True, momentum=0.1, eps=1e-5)


def generator(z, planes, p, layers, arch):
    """DCGAN's G, or the ImageNet G (paper §4.4): noise planes concatenated to the input of every
    upsampling, a 3x3 convolution to the image."""
    h = z.view(z.shape[0], -1, 1, 1)
    for i in range(layers):
        stride, pad = (1, 0) if i == 0 else (2, 1)
        if i > 0 and planes:
            h = torch.cat([h, planes[i - 1]], 1)
        h = F.relu(bn(F.conv_transpose2d(h, p[f"up{i}.weight"], stride=stride, padding=pad), p, f"bn{i}"))
    if arch == "imagenet":
        return torch.tanh(F.conv2d(h, p["out.weight"], padding=1))
    return torch.tanh(F.conv_transpose2d(h, p["out.weight"], stride=2, padding=1))


def auto_encoder(x, p, n):
    h = x
    for i in range(n):
        h = F.conv2d(h, p[f"enc{i}.weight"], stride=2, padding=1)
        if i > 0:
            h = bn(h, p, f"enc_bn{i}")
        h = F.leaky_relu(h, 0.2)
    code = h
    for i in range(n):
        h = F.conv_transpose2d(h, p[f"dec{i}.weight"], stride=2, padding=1)
        if i + 1 < n:
            h = F.relu(bn(h, p, f"dec_bn{i}"))
    return h, code


def logistic(x, p, n):
    h = x
    for i in range(n):
        h = F.conv2d(h, p[f"conv{i}.weight"], stride=2, padding=1)
        if i > 0:
            h = bn(h, p, f"bn{i}")
        h = F.leaky_relu(h, 0.2)
    return F.conv2d(h, p["out.weight"]).view(-1)


def main(base):
    cfg, data = load_case(base)
    nets = {"g": {}, "d": {}}
    for key, t in data.items():
        if key.startswith("init/"):
            net, name = key[len("init/"):].split("/", 1)
            stat = name.endswith(("running_mean", "running_var"))
            nets[net][name] = t.clone() if stat else t.clone().requires_grad_(True)
    g, d = nets["g"], nets["d"]
    opt_g = optimizer([g[n] for n in cfg["g_params"]], cfg["optim_g"])
    opt_d = optimizer([d[n] for n in cfg["d_params"]], cfg["optim_d"])
    model = cfg["model"]
    ebgan = model != "gan"
    assert cfg["energy"] == "l2" or model == "began", cfg["energy"]

    def critic(x):
        if ebgan:
            recon, code = auto_encoder(x, d, cfg["encoder_layers"])
            diff = (recon - x).flatten(1)
            if model == "began":
                return (diff.abs() ** cfg["began_eta"]).mean(1), code
            return diff.norm(dim=1), code
        return logistic(x, d, cfg["d_layers"]), None

    answer = {}
    k_t, margin = 0.0, cfg["margin"]
    magan = MaganMargin(cfg["magan_strict"], cfg["steps_per_epoch"], cfg["pretrain_steps"])
    for t in range(cfg["steps"]):
        x, z = data[f"x/{t}"], data[f"z/{t}"]
        if model == "magan":
            margin = magan.margin
        if model == "magan" and t < cfg["pretrain_steps"]:
            real_out, _ = critic(x)
            loss_d = real_out.mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g, real_mean, fake_mean = torch.zeros(()), loss_d.item(), 0.0
        else:
            planes = [data[f"planes/{t}/{i}"] for i in range(cfg["noise_inputs"])]
            fake = generator(z, planes, g, cfg["g_layers"], cfg["arch"])
            loss_d, loss_g, real_mean, fake_mean = paper_step(
                model, critic, x, fake, k_t, margin, cfg["pulling_away"], opt_d, opt_g)
        if model == "began":
            # Both energies by D before its update, as BEGAN evaluates its losses with one D.
            k_t = began_k(k_t, cfg["began_lambda_k"], cfg["began_gamma"], real_mean, fake_mean)
            answer[f"out/k/{t}"] = torch.tensor([k_t])
        if model == "magan":
            magan.after_step(t, real_mean, fake_mean)
            answer[f"out/margin/{t}"] = torch.tensor([magan.margin])
        answer[f"out/loss_d/{t}"] = loss_d.detach().reshape(1)
        answer[f"out/loss_g/{t}"] = loss_g.detach().reshape(1)
    for net, params, opt, h in (("g", g, opt_g, cfg["optim_g"]), ("d", d, opt_d, cfg["optim_d"])):
        for name, t in params.items():
            answer[f"final/{net}/{name}"] = t.detach()
        for name in cfg[f"{net}_params"]:
            for which, s in moments(opt, params[name], h["kind"]).items():
                answer[f"moment/{net}/{name}/{which}/0"] = s
    write_safetensors(base + ".reference.safetensors", answer)


if __name__ == "__main__":
    reproducible()
    main(sys.argv[1])
