"""One EBGAN-PT training step at 64x64 (DCGAN generator, 3-layer convolutional auto-encoder D,
pulling-away term, Adam) in PyTorch eager, as a researcher would write it: the reference that
`ebgan bench-conv` compares the Rust step with. Same shapes as crates/ebgan-models/src/dcgan.rs.

Prints one JSON line per batch size: {"batch": B, "images_per_s": ...}.
"""
import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from timing import like_ours, steps_per_second


def generator(z_dim, b, channels=3):
    w = [8 * b, 4 * b, 2 * b, b]
    layers = [nn.ConvTranspose2d(z_dim, w[0], 4, 1, 0, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(True)]
    for i in range(3):
        layers += [nn.ConvTranspose2d(w[i], w[i + 1], 4, 2, 1, bias=False), nn.BatchNorm2d(w[i + 1]), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(b, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    def __init__(self, e, channels=3):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, e, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(e, 2 * e, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * e), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * e, 4 * e, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * e), nn.LeakyReLU(0.2, True),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * e, 2 * e, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * e), nn.ReLU(True),
            nn.ConvTranspose2d(2 * e, e, 4, 2, 1, bias=False), nn.BatchNorm2d(e), nn.ReLU(True),
            nn.ConvTranspose2d(e, channels, 4, 2, 1, bias=False),
        )

    def forward(self, x):
        code = self.encoder(x)
        return self.decoder(code), code


def pulling_away(code):
    s = F.normalize(code.flatten(1), dim=1)
    n = s.shape[0]
    cos2 = (s @ s.t()) ** 2
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def init(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def bench(batch, steps, warmup, device, images, base):
    g = generator(100, base).to(device)
    d = AutoEncoder(base).to(device)
    init(g)
    init(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    margin, pt = 20.0, 0.1

    def energy(x):
        recon, code = d(x)
        return (recon - x).flatten(1).norm(dim=1), code

    def step():
        idx = torch.randint(0, images.shape[0], (batch,), device=device)
        x = images[idx].float() * (2 / 255) - 1
        fake = g(torch.randn(batch, 100, 1, 1, device=device))
        e_real, _ = energy(x)
        e_fake, _ = energy(fake.detach())
        loss_d = e_real.mean() + F.relu(margin - e_fake).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        e, code = energy(fake)
        loss_g = e.mean() + pt * pulling_away(code)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return batch * steps_per_second(step, steps, warmup, device)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--tf32", action="store_true", help="TF32 in matmuls and convolutions, as ours under --matmul-precision high")
    p.add_argument("--base", type=int, default=64)
    p.add_argument("--batch", type=int, action="append", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    settings = like_ours(True, a.tf32)
    images = torch.randint(0, 256, (2048, 3, 64, 64), dtype=torch.uint8, device=device)
    for b in a.batch:
        rate = bench(b, a.steps, a.warmup, device, images, a.base)
        print(json.dumps({"batch": b, "images_per_s": rate, **settings}), flush=True)


if __name__ == "__main__":
    main()
