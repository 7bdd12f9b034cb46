"""The MNIST-64 DCGAN of experiments/mnist64.toml written independently in PyTorch (torch.nn
modules, torch.optim.Adam): MNIST padded to 64x64, half-width DCGAN G and D (g_base = d_base =
32), N(0, 0.02) init (batch-norm scales N(1, 0.02)), Adam 2e-4 (0.5, 0.999), batch 64, 1200
steps, non-saturating G loss. Answers whether that SETTING makes DCGAN collapse, independently of
our code: prints the last 100 steps' mean losses and D(x), D(G(z)), and the mean pairwise L2
distance of 64 samples beside that of 64 real images; writes OUT/samples.png.

Usage: python parity/mnist64_dcgan.py DATA/mnist OUT [--steps 1200] [--seed 0]
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def mnist64(folder):
    with open(os.path.join(folder, "train-images-idx3-ubyte"), "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    out = np.zeros((raw.shape[0], 1, 64, 64), dtype=np.uint8)
    out[:, 0, 18:46, 18:46] = raw
    return torch.from_numpy(out)


def generator(z_dim=100, b=32):
    w = [8 * b, 4 * b, 2 * b, b]
    layers = [nn.ConvTranspose2d(z_dim, w[0], 4, 1, 0, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(True)]
    for i in range(3):
        layers += [nn.ConvTranspose2d(w[i], w[i + 1], 4, 2, 1, bias=False), nn.BatchNorm2d(w[i + 1]), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(b, 1, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(d=32):
    layers = [nn.Conv2d(1, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for i in range(3):
        layers += [nn.Conv2d(d << i, d << (i + 1), 4, 2, 1, bias=False), nn.BatchNorm2d(d << (i + 1)),
                   nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(8 * d, 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*layers)


def init(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def pairwise(x):
    f = x.flatten(1)
    return torch.cdist(f, f).sum().item() / (f.shape[0] * (f.shape[0] - 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mnist")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    images = mnist64(a.mnist)
    g, d = generator(), discriminator()
    init(g)
    init(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    window, t0 = [], time.time()
    for step in range(a.steps):
        x = images[torch.randint(0, images.shape[0], (64,))].float() * (2 / 255) - 1
        fake = g(torch.randn(64, 100, 1, 1))
        l_real, l_fake = d(x).view(-1), d(fake.detach()).view(-1)
        loss_d = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(fake).view(-1)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        window.append((loss_d.item(), loss_g.item(), torch.sigmoid(l_real).mean().item(),
                       torch.sigmoid(l_fake).mean().item()))
        window = window[-100:]
    g.eval()
    with torch.no_grad():
        samples = g(torch.randn(64, 100, 1, 1))
    real = images[:64].float() * (2 / 255) - 1
    mean = np.mean(window, axis=0)
    grid = ((samples[:, 0] + 1) * 127.5).clamp(0, 255).byte().numpy()
    sheet = grid.reshape(8, 8, 64, 64).transpose(0, 2, 1, 3).reshape(512, 512)
    from PIL import Image
    Image.fromarray(sheet).save(os.path.join(a.out, "samples.png"))
    print(json.dumps({"steps": a.steps, "loss_d": mean[0], "loss_g": mean[1], "d_real": mean[2],
                      "d_fake": mean[3], "sample_pairwise_l2": pairwise(samples),
                      "real_pairwise_l2": pairwise(real), "seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
