"""PyTorch reference of the semi-supervised step (paper §4.2; ladder.md): the ladder network of
Rasmus et al. 2015 (784-1000-500-250-250-250-10, batch normalisation without learned scale,
Gaussian corruption of the input and of every normalised pre-activation, the Gaussian
or "sig" combinator, top-down decoder) trained on cross-entropy + lambda_0 x the bottom-layer
reconstruction cost, and for EBGAN-LN the hinge hinge_weight x mean [m - E(G(z))]^+ on generated
images, then a G step through the updated ladder (E = the bottom-layer cost of the corrupted
pass). Plain torch ops, torch.optim (Adam or SGD) with the ladder's learning-rate schedule set
at every step.

Usage: python parity/ladder.py OUT/CASE  (reads CASE.json and CASE.safetensors, writes
CASE.reference.safetensors keyed like the Rust side).
"""
import sys

import torch
import torch.nn.functional as F

from common import reproducible
from common import load_case, moments, optimizer, write_safetensors

WIDTHS = [784, 1000, 500, 250, 250, 250, 10]
EPS = 1e-10


def normalize(z):
    mean = z.mean(0, keepdim=True)
    std = (z.var(0, unbiased=False, keepdim=True) + EPS).sqrt()
    return (z - mean) / std, mean, std


class Ladder:
    def __init__(self, p, noise, kind):
        self.p, self.noise = p, noise  # noise: the recorded draws, consumed in order
        self.kind = kind  # the combinator: "gauss" or "sig"

    def draw(self):
        return next(self.noise)[0]

    def encode(self, x, corrupt):
        n = len(WIDTHS) - 1
        x = x + self.draw() if corrupt else x
        zs, means, stds, h = [x], [None], [None], x
        for l in range(n):
            z, mean, std = normalize(h @ self.p[f"w{l + 1}"])
            if corrupt:
                z = z + self.draw()
            shifted = z + self.p[f"beta{l + 1}"]
            if l + 1 == n:
                top = self.p["gamma"] * shifted
            else:
                h = F.relu(shifted)
            zs.append(z)
            means.append(mean)
            stds.append(std)
        return {"z": zs, "mean": means, "std": stds, "probs": F.softmax(top, -1),
                "log_probs": F.log_softmax(top, -1)}

    def combine(self, l, z, u):
        if self.kind == "sig":
            # Pezeshki et al.'s vanilla form, a1..a9 = b0, w0z, w0u, w0zu, b1, w1z, w1u, w1zu, w_sigma.
            b0, w0z, w0u, w0zu, b1, w1z, w1u, w1zu, ws = (self.p[f"g{l}.a{i}"] for i in range(1, 10))
            return (b0 + w0z * z + w0u * u + w0zu * z * u
                    + ws * torch.sigmoid(b1 + w1z * z + w1u * u + w1zu * z * u))
        a = [self.p[f"g{l}.a{i}"] for i in range(1, 11)]
        mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        return (z - mu) * v + mu

    def decode(self, corrupted):
        n = len(WIDTHS) - 1
        z_hat = [None] * (n + 1)
        for l in range(n, -1, -1):
            u = corrupted["probs"] if l == n else z_hat[l + 1] @ self.p[f"v{l + 1}"]
            z_hat[l] = self.combine(l, corrupted["z"][l], normalize(u)[0])
        return z_hat

    def bottom_cost(self, x, z_hat0):
        return ((x - z_hat0) ** 2).sum(1) / WIDTHS[0]

    def energy(self, x):
        return self.bottom_cost(x, self.decode(self.encode(x, True))[0])


def generator(z, g, layers):
    """Table 1's MLP G (linear, batch norm, ReLU; tanh out) mapped to [0, 1]."""
    h = z
    for i in range(layers - 1):
        h = F.linear(h, g[f"g.l{i}.weight"].t(), g[f"g.l{i}.bias"].reshape(-1))
        h = F.batch_norm(h, None, None, g[f"g.bn{i}.gamma"].reshape(-1), g[f"g.bn{i}.beta"].reshape(-1),
                         training=True, eps=1e-5)
        h = F.relu(h)
    out = torch.tanh(F.linear(h, g["g.out.weight"].t(), g["g.out.bias"].reshape(-1)))
    return (out + 1) / 2


def learning_rate(cfg, t):
    """The ladder's schedule: the base lr, then linear to 0 from `lr_decay_start` (a fraction of
    the run's steps; step t has progress t / steps)."""
    progress, start = t / cfg["total_steps"], cfg["lr_decay_start"]
    return cfg["base_lr"] * (1 - progress) / (1 - start) if progress >= start else cfg["base_lr"]


def main(base):
    cfg, data = load_case(base)
    ln = {k[len("init/vars/"):]: t.clone().requires_grad_(True)
          for k, t in data.items() if k.startswith("init/vars/")}
    # G's tensors keep the member dimension of one: [1, in, out], [1, 1, H].
    g = {k[len("init/g/"):]: t[0].clone().requires_grad_(True)
         for k, t in data.items() if k.startswith("init/g/")}
    opt = optimizer([ln[n] for n in cfg["ln_params"]], cfg["optim"])
    opt_g = optimizer([g[n] for n in cfg["g_params"]], cfg["optim_g"]) if g else None
    answer = {}
    for t in range(cfg["steps"]):
        noise = iter(data[f"noise/{t}/{i}"] for i in range(sum(k.startswith(f"noise/{t}/") for k in data)))
        zs = iter(data[f"z/{t}/{i}"][0] for i in range(sum(k.startswith(f"z/{t}/") for k in data)))
        # "ln.w1" -> "w1"
        net = Ladder({k.split(".", 1)[1]: v for k, v in ln.items()}, noise, cfg["combinator"])
        xl, yl, xu = data[f"xl/{t}"], data[f"yl/{t}"], data[f"xu/{t}"]
        lr = learning_rate(cfg, t)
        for group in opt.param_groups:
            group["lr"] = lr
        ce = -net.encode(xl, True)["log_probs"].gather(1, yl.unsqueeze(1)).mean()
        corrupted = net.encode(xu, True)
        net.encode(xu, False)  # the clean pass: only the bottom-layer cost is used
        energy_real = net.bottom_cost(xu, net.decode(corrupted)[0])
        loss_d = ce + energy_real.mean() * cfg["lambda_0"]
        if opt_g is not None:
            z_d = next(zs)
            with torch.no_grad():
                fake = generator(z_d, g, cfg["n_layer_g"])
            loss_d = loss_d + F.relu(cfg["margin"] - net.energy(fake)).mean() * cfg["hinge_weight"]
        opt.zero_grad()
        loss_d.backward()
        opt.step()
        answer[f"out/loss_d/{t}"] = loss_d.detach().reshape(1)
        if opt_g is not None:
            z = next(zs) if cfg["g_fresh_noise"] else z_d
            loss_g = net.energy(generator(z, g, cfg["n_layer_g"])).mean()
            g_lr = cfg["optim_g"]["lr"]
            for group in opt_g.param_groups:
                group["lr"] = g_lr * lr / cfg["base_lr"] if cfg["g_lr_decay"] else g_lr
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            answer[f"out/loss_g/{t}"] = loss_g.detach().reshape(1)
    for prefix, params, o, names, h in (("vars", ln, opt, cfg["ln_params"], cfg["optim"]),
                                        ("g", g, opt_g, cfg["g_params"], cfg["optim_g"])):
        for n in names:
            like = data[f"init/{prefix}/{n}"]
            answer[f"final/{prefix}/{n}"] = params[n].detach().reshape(like.shape)
            for which, s in moments(o, params[n], h["kind"]).items():
                answer[f"moment/{prefix}/{n}/{which}/0"] = s.reshape(like.shape)
    write_safetensors(base + ".reference.safetensors", answer)


if __name__ == "__main__":
    reproducible()
    main(sys.argv[1])
