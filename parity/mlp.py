"""PyTorch reference of the Table 1 MLP step (paper §2 Eq. 1-2, §4.1), one member at a time,
written from the paper with plain torch ops and torch.optim: G then D on real and detached fakes
(L_D = E(x) + mean [m - E(G(z))]^+, m = m(t) when the margin decays), then G through the updated D on the same fakes
(L_G = E(G(z)) + w PT); GAN: logistic D, non-saturating G.
BEGAN (arXiv 1703.10717): energy mean |x - D(x)|^eta, L_D = L(x) - k_t L(G(z)), L_G = L(G(z)),
k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1), both energies by D before its update.
WGAN-GP (arXiv 1704.00028, Algorithm 1): a critic without batch norm, L_D = D(G(z)) - D(x) +
lambda (||grad D(x_hat)||_2 - 1)^2 on x_hat = eps x + (1 - eps) G(z) (torch.autograd.grad with
create_graph), G's loss -D(G(z)) through the updated critic on every n_critic-th step. MAGAN (arXiv 1704.03817): D pretrained
on real data (L_D = E(x)), the margin set to the last pretraining epoch's mean real energy, then
at each epoch's end m <- mean real energy if it is < m, < the mean fake energy, and the previous
epoch's mean fake energy < this one's (<= throughout when not strict).

Usage: python parity/mlp.py OUT/CASE  (reads CASE.json and CASE.safetensors, writes
CASE.reference.safetensors keyed like the Rust side: out/, final/, moment/).
"""
import sys

import torch
import torch.nn.functional as F

from common import reproducible
from common import MaganMargin, began_k, dropout, load_case, moments, optimizer, scheduled_margin
from common import paper_step, wgan_gp_step, write_safetensors


def to_torch(name, t):
    """Rust keeps x W + b with W [in, out] and [1, H] rows; torch.nn.Linear keeps W [out, in]."""
    return (t.t() if name.endswith(".weight") else t.reshape(-1)).clone().requires_grad_(True)


def from_torch(name, t, like):
    return (t.t() if name.endswith(".weight") else t).reshape(like.shape).detach()


class Member:
    def __init__(self, cfg, init, k):
        self.cfg, self.k = cfg, k
        self.m = cfg["members"][k]
        self.p = {n[len("init/"):]: to_torch(n, t[k]) for n, t in init.items()}
        self.any_dropout = any(m["dropout_p"] > 0 for m in cfg["members"])

    def stack(self, h, net, layers, first_bn, masks=None, batch_norm=True):
        """linear -> (batch norm) -> ReLU -> (dropout); returns (last activation, output)."""
        last = h
        for i in range(layers):
            h = F.linear(h, self.p[f"{net}.l{i}.weight"], self.p[f"{net}.l{i}.bias"])
            if self.cfg["batch_norm"] and batch_norm and i >= first_bn:
                h = F.batch_norm(h, None, None, self.p[f"{net}.bn{i}.gamma"],
                                 self.p[f"{net}.bn{i}.beta"], training=True, eps=1e-5)
            h = F.relu(h)
            last = h
            if masks is not None and self.any_dropout:
                h = dropout(h, next(masks)[self.k], self.m["dropout_p"])
        return last, h

    def generator(self, z):
        _, h = self.stack(z, "g", self.cfg["n_layer_g"] - 1, 0)
        return torch.tanh(F.linear(h, self.p["g.out.weight"], self.p["g.out.bias"]))

    def critic(self, x, masks):
        """Energies [B] and codes (EBGAN), logits [B] (GAN) or scores [B] (WGAN-GP's critic,
        without batch norm)."""
        code, h = self.stack(x, "d", self.cfg["n_layer_d"] - 1, 1, masks,
                             batch_norm=self.cfg["d_batch_norm"])
        if self.cfg["model"] in ("gan", "wgan-gp"):
            return F.linear(h, self.p["d.out.weight"], self.p["d.out.bias"]).squeeze(-1), None
        recon = F.linear(h, self.p["d.decoder.weight"], self.p["d.decoder.bias"])
        diff = recon - x
        if self.cfg["model"] == "began":
            return (diff.abs() ** self.cfg["began_eta"]).mean(1), code
        energy = {"l2": lambda: diff.norm(dim=1), "sse": lambda: (diff ** 2).sum(1),
                  "mse": lambda: (diff ** 2).mean(1)}[self.cfg["energy"]]()
        return energy, code


def train_member(cfg, data, k):
    init = {n: t for n, t in data.items() if n.startswith("init/")}
    net = Member(cfg, init, k)
    m = net.m
    g_params = [net.p[n] for n in cfg["g_params"]]
    d_params = [net.p[n] for n in cfg["d_params"]]
    opt_g, opt_d = optimizer(g_params, m["optim_g"]), optimizer(d_params, m["optim_d"])
    model = cfg["model"]
    losses, adaptive, penalties = [], [], []
    k_t = 0.0
    magan = MaganMargin(m["magan_strict"], cfg["steps_per_epoch"], cfg["pretrain_steps"])
    for t in range(cfg["steps"]):
        x = data[f"x/{t}"][k]
        masks = iter(data[f"mask/{t}/{i}"] for i in range(len([n for n in data if n.startswith(f"mask/{t}/")])))
        margin = magan.margin if model == "magan" else scheduled_margin(m, t)
        if model == "magan" and t < cfg["pretrain_steps"]:
            real_out, _ = net.critic(x, masks)
            loss_d = real_out.mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            losses.append((loss_d.item(), 0.0))
            real_mean, fake_mean = loss_d.item(), 0.0
        elif model == "wgan-gp":
            fake = net.generator(data[f"z/{t}"][k])
            g_turn = (t + 1) % cfg["n_critic"] == 0
            loss_d, loss_g, penalty = wgan_gp_step(
                lambda v: net.critic(v, masks), x, fake, data[f"eps/{t}"][k], m["wgan_lambda"],
                g_turn, opt_d, opt_g)
            losses.append((loss_d.item(), loss_g.item()))
            penalties.append((penalty.item(), float(g_turn)))
        else:
            fake = net.generator(data[f"z/{t}"][k])
            loss_d, loss_g, real_mean, fake_mean = paper_step(
                model, lambda v: net.critic(v, masks), x, fake, k_t, margin,
                m["pulling_away"], opt_d, opt_g)
            losses.append((loss_d.item(), loss_g.item()))
            if model == "began":
                # BEGAN measures L(x) and L(G(z)) with one D, before its update.
                k_t = began_k(k_t, m["began_lambda_k"], m["began_gamma"], real_mean, fake_mean)
        if model == "magan":
            magan.after_step(t, real_mean, fake_mean)
            margin = magan.margin
        adaptive.append(k_t if model == "began" else margin)
    return net, opt_g, opt_d, losses, adaptive, penalties


def main(base):
    cfg, data = load_case(base)
    members = len(cfg["members"])
    answer, finals = {}, {}
    all_losses, all_adaptive, all_penalties = [], [], []
    for k in range(members):
        net, opt_g, opt_d, losses, adaptive, penalties = train_member(cfg, data, k)
        all_losses.append(losses)
        all_adaptive.append(adaptive)
        all_penalties.append(penalties)
        for names, opt, kind in ((cfg["g_params"], opt_g, cfg["members"][k]["optim_g"]["kind"]),
                                 (cfg["d_params"], opt_d, cfg["members"][k]["optim_d"]["kind"])):
            for n in names:
                like = data[f"init/{n}"][k]
                finals.setdefault(n, []).append(from_torch(n, net.p[n], like))
                for which, s in moments(opt, net.p[n], kind).items():
                    answer[f"moment/{n}/{which}/{k}"] = from_torch(n, s, like)
    for n, per_member in finals.items():
        answer[f"final/{n}"] = torch.stack(per_member)
    for t in range(cfg["steps"]):
        answer[f"out/loss_d/{t}"] = torch.tensor([all_losses[k][t][0] for k in range(members)])
        answer[f"out/loss_g/{t}"] = torch.tensor([all_losses[k][t][1] for k in range(members)])
        if cfg["model"] == "wgan-gp":
            for i, name in enumerate(("penalty", "g_turn")):
                answer[f"out/{name}/{t}"] = torch.tensor([all_penalties[k][t][i] for k in range(members)])
        decaying = any(scheduled_margin(m, 0) != scheduled_margin(m, cfg["steps"]) for m in cfg["members"])
        name = {"began": "k", "magan": "margin"}.get(cfg["model"], "margin" if decaying else None)
        if name:
            answer[f"out/{name}/{t}"] = torch.tensor([all_adaptive[k][t] for k in range(members)])
    write_safetensors(base + ".reference.safetensors", answer)


if __name__ == "__main__":
    reproducible()
    main(sys.argv[1])
