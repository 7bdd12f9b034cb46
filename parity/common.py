"""Helpers shared by the parity references: safetensors without the safetensors package, and
the settings of one case."""
import json
import os
import struct

import torch

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U8": torch.uint8,
           "BOOL": torch.bool, "I32": torch.int32}
_NAMES = {v: k for k, v in _DTYPES.items()}



def reproducible():
    """Deterministic kernels in full FP32, as `ebgan parity` and gpu-check run ours
    (--matmul-precision highest): cuBLAS needs a fixed workspace for deterministic matmuls (set
    before its first call, or use_deterministic_algorithms raises there), and cuDNN would
    otherwise use TF32 and search for the fastest, not the same, kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[start:end]), dtype=_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        raw = t.numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))


# Where the training-step references (the scripts that call load_case) run: `ebgan gpu-check`
# sets EBGAN_PARITY_DEVICE to its own device, so that PyTorch runs beside our side; default CPU.
DEVICE = torch.device(os.environ.get("EBGAN_PARITY_DEVICE", "cpu"))


def load_case(base):
    with open(base + ".json") as f:
        settings = json.load(f)
    with torch.device("cpu"):
        tensors = read_safetensors(base + ".safetensors")
    torch.set_default_device(DEVICE)
    return settings, {k: v.to(DEVICE) for k, v in tensors.items()}


def optimizer(params, h):
    """torch.optim for one member's settings (kind, lr, beta1, beta2, eps, momentum)."""
    if h["kind"] == "adam":
        return torch.optim.Adam(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    return torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"])


def moments(opt, param, kind):
    """The optimizer state of `param`, keyed as the Rust side names it: m, v (Adam), buf (SGD)."""
    s = opt.state[param]
    if kind == "adam":
        return {"m": s["exp_avg"], "v": s["exp_avg_sq"]}
    buf = s.get("momentum_buffer")
    return {} if buf is None else {"buf": buf}


def dropout(h, mask_bytes, p):
    """Inverted dropout from mask bytes: keep where byte >= round(256 p), scale 256 / (256 - t)."""
    if p == 0:
        return h
    t = min(round(p * 256), 255)
    return h * (mask_bytes >= t).to(h.dtype) * (256.0 / (256 - t))


def loss_d(ebgan, real, fake, margin):
    """Eq. 1: E(x) + mean [m - E(G(z))]^+ per sample; GAN: the logistic D loss."""
    f = torch.nn.functional
    if ebgan:
        return real.mean() + f.relu(margin - fake).mean()
    return (f.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + f.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def loss_g(ebgan, out, code, pt):
    """Eq. 2: E(G(z)) + w PT; GAN: the non-saturating G loss."""
    if ebgan:
        return out.mean() + (pt * pulling_away(code) if pt > 0 else 0)
    return torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out))


def paper_step(model, critic, x, fake, k_t, margin, pt, opt_d, opt_g):
    """The paper's step: D on real x and detached fakes (BEGAN: L(x) - k_t L(G(z))), then G
    through the updated D on the same fakes. `critic(v)` answers (energies or logits, codes).
    Returns (loss_d, loss_g, mean real, mean fake), the means measured by D before its update."""
    ebgan = model != "gan"
    real_out, _ = critic(x)
    fake_out, _ = critic(fake.detach())
    if model == "began":
        d = real_out.mean() - k_t * fake_out.mean()
    else:
        d = loss_d(ebgan, real_out, fake_out, margin)
    opt_d.zero_grad()
    d.backward()
    opt_d.step()
    out, code = critic(fake)
    g = loss_g(ebgan, out, code, pt)
    opt_g.zero_grad()
    g.backward()
    opt_g.step()
    return d, g, real_out.mean().item(), fake_out.mean().item()


def wgan_gp_step(critic, x, fake, eps, lam, g_turn, opt_d, opt_g):
    """WGAN-GP's critic step on real x, detached fakes and their interpolates, then (on G's
    turn) G through the updated critic on the same fakes; between turns G's loss is -D(G(z)) as
    the critic saw the fakes. Returns (loss_d, loss_g, penalty)."""
    real_out, _ = critic(x)
    fake_out, _ = critic(fake.detach())
    e = eps.reshape(-1, *([1] * (x.dim() - 1)))
    x_hat = (e * x + (1 - e) * fake.detach()).requires_grad_(True)
    hat_out, _ = critic(x_hat)
    (grad,) = torch.autograd.grad(hat_out.sum(), x_hat, create_graph=True)
    penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    d = fake_out.mean() - real_out.mean() + lam * penalty
    opt_d.zero_grad()
    d.backward()
    opt_d.step()
    if not g_turn:
        return d, -fake_out.mean(), penalty
    out, _ = critic(fake)
    g = -out.mean()
    opt_g.zero_grad()
    g.backward()
    opt_g.step()
    return d, g, penalty


def pulling_away(code):
    """Eq. 4: mean squared cosine between distinct samples' codes."""
    s = torch.nn.functional.normalize(code.flatten(1), dim=1)
    n = s.shape[0]
    cos2 = (s @ s.t()) ** 2
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def scheduled_margin(m, t):
    """EBGAN's margin m(t) (its margin_decay fields): `margin` until step round(start T), then
    linear to `margin_floor` at step round(end T), then the floor; T is the run's steps."""
    start, floor = m["margin"], m["margin_floor"]
    if m["margin_decay"] != "linear" or start == floor:
        return start
    at = lambda f: int(min(max(f, 0.0), 1.0) * m["total_steps"] + 0.5)
    a = at(m["margin_decay_start"])
    b = max(at(m["margin_decay_end"]), a)
    if t <= a:
        return start
    if t >= b:
        return floor
    return start + (t - a) / (b - a) * (floor - start)


def began_k(k, lambda_k, gamma, real_mean, fake_mean):
    """BEGAN's k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)."""
    return min(max(k + lambda_k * (gamma * real_mean - fake_mean), 0.0), 1.0)


class MaganMargin:
    """MAGAN's margin: 0 while D pretrains, then the last pretraining epoch's mean real energy;
    at each adversarial epoch's end m <- mean real energy if it is < m, < the epoch's mean fake
    energy, and the previous epoch's mean fake energy < this one's (<= when not strict)."""

    def __init__(self, strict, steps_per_epoch, pretrain_steps):
        self.margin, self.per_epoch, self.pretrain = 0.0, steps_per_epoch, pretrain_steps
        self.below = (lambda a, b: a < b) if strict else (lambda a, b: a <= b)
        self.sums, self.summed, self.previous_fake = [0.0, 0.0], 0, float("inf")

    def after_step(self, t, real_mean, fake_mean):
        self.sums = [self.sums[0] + real_mean, self.sums[1] + fake_mean]
        self.summed += 1
        if (t + 1) % self.per_epoch:
            return
        real, fake = self.sums[0] / self.summed, self.sums[1] / self.summed
        if t + 1 == self.pretrain:
            self.margin = real
        elif t + 1 > self.pretrain:
            if (self.below(real, self.margin) and self.below(real, fake)
                    and self.below(self.previous_fake, fake)):
                self.margin = real
            self.previous_fake = fake
        self.sums, self.summed = [0.0, 0.0], 0
