"""One EBGAN and one GAN training step of a Table 1 MLP in PyTorch eager, as a researcher would
write it: the reference that `ebgan bench` compares the Rust step with.

Prints one JSON line per (shape, model): {"shape": [nLayerG, sizeG, nLayerD, sizeD], "model": ..., "steps_per_s": ...}.
"""
import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from timing import like_ours, steps_per_second


def generator(n_layer, size, z_dim=100, out=784):
    layers, width = [], z_dim
    for _ in range(n_layer - 1):
        layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.ReLU()]
        width = size
    layers += [nn.Linear(width, out), nn.Tanh()]
    return nn.Sequential(*layers)


def hidden(n_hidden, size, inp=784):
    layers, width = [], inp
    for i in range(n_hidden):
        layers += [nn.Linear(width, size)] + ([nn.BatchNorm1d(size)] if i > 0 else []) + [nn.ReLU()]
        width = size
    return layers


class AutoEncoder(nn.Module):
    def __init__(self, n_layer, size):
        super().__init__()
        self.encoder = nn.Sequential(*hidden(n_layer - 1, size))
        self.decoder = nn.Linear(size, 784)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def init(module, std):
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)


def bench(shape, model, steps, warmup, device, images):
    n_layer_g, size_g, n_layer_d, size_d = shape
    g = generator(n_layer_g, size_g).to(device)
    if model == "ebgan":
        d = AutoEncoder(n_layer_d, size_d).to(device)
    else:
        d = nn.Sequential(*hidden(n_layer_d - 1, size_d), nn.Linear(size_d, 1)).to(device)
    init(g, 0.02)
    init(d, 0.002)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    margin = 10.0

    def step():
        idx = torch.randint(0, images.shape[0], (64,), device=device)
        x = images[idx].float() * (2 / 255) - 1
        fake = g(torch.randn(64, 100, device=device))
        if model == "ebgan":
            e_real = (d(x) - x).norm(dim=1)
            e_fake = (d(fake.detach()) - fake.detach()).norm(dim=1)
            loss_d = e_real.mean() + F.relu(margin - e_fake).mean()
        else:
            loss_d = F.softplus(-d(x)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        if model == "ebgan":
            loss_g = (d(fake) - fake).norm(dim=1).mean()
        else:
            loss_g = F.softplus(-d(fake)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return steps_per_second(step, steps, warmup, device)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--tf32", action="store_true", help="TF32 in matmuls and convolutions, as ours under --matmul-precision high")
    p.add_argument("--shape", action="append", required=True, help="nLayerG,sizeG,nLayerD,sizeD")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    settings = like_ours(False, a.tf32)
    images = torch.randint(0, 256, (60000, 784), dtype=torch.uint8, device=device)
    for s in a.shape:
        shape = [int(v) for v in s.split(",")]
        for model in ("ebgan", "gan"):
            rate = bench(shape, model, a.steps, a.warmup, device, images)
            print(json.dumps({"shape": shape, "model": model, "steps_per_s": rate, **settings}), flush=True)


if __name__ == "__main__":
    main()
