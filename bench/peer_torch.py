"""The PyTorch peer of the speed benchmark (bench/speed.ts): the same two architectures at the same sizes and
batches, the same training step, inference and adaptation job, reported as the same JSON records.

    /usr/bin/python3 bench/peer_torch.py --backbone mobilenetv2|tiny [--device cpu|cuda] [--threads N]
        [--train-batches 16,32] [--infer-batch 32] [--effort JSON]
        [--job CLASSES,SHOTS,EPOCHS,BATCH,LR_HEAD,LR_BACKBONE,VAL_FRACTION]
        [--deadline EPOCH_MS] [--profile] [--describe]

Architectures
- mobilenetv2: torchvision's mobilenet_v2 `features[:12]` + global average pooling. Keras names the blocks
  after the stem `expanded_conv` (torchvision `features[1]`) and `block_1` .. `block_16` (`features[2]` ..
  `features[17]`), so Keras `block_10` is `features[11]` and the cut at `block_10_project_BN` is
  `features[:12]`: 96 output channels, 33 BatchNorm layers and 305,984 trainable parameters, the same counts
  as the Keras cut (`features[:14]` would also end on 96 channels, but after block_12: 39 BN layers, 542,528
  parameters). Weights are random (torchvision's ImageNet weights would need a download; speed does not
  depend on them). Keras pads stride-2 convolutions (0, 1), torchvision (1, 1): the same output sizes and work.
- tiny: 4x (conv3x3 no bias + BN(eps 1e-3) + ReLU) with 16, 32 (stride 2), 64 (stride 2), 64 channels, GAP.
Both get a dense head of 10 classes; images are NCHW (the channels_last layout was slower on this build).
"""

import argparse
import json
import math
import os
import resource
import sys
import time

PREFIX = "@@speed "


def emit(record):
    print(PREFIX + json.dumps(record), flush=True)


try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    import torchvision
    from torch import nn
except Exception as err:  # the harness reports the row as skipped
    emit({"kind": "skipped", "what": "all", "reason": f"PyTorch is not importable: {err}"})
    sys.exit(0)

MiB = 1024 * 1024
CLASSES = 10


def tiny_features():
    layers, cin = [], 1
    for cout, stride in [(16, 1), (32, 2), (64, 2), (64, 1)]:
        layers += [
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1),
            nn.ReLU(),
        ]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def mobilenetv2_features():
    features = torchvision.models.mobilenet_v2(weights=None).features[:12]
    return nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten())


BACKBONES = {
    "mobilenetv2": (mobilenetv2_features, (3, 96, 96), 96),
    "tiny": (tiny_features, (1, 28, 28), 64),
}


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


def hwm_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def median(values):
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


class Memory:
    def __init__(self, device):
        self.device = device
        self.peak = 0.0

    def sample(self):
        self.peak = max(self.peak, rss_mib())

    def record(self):
        self.sample()
        rec = {"kind": "memory", "rssMiB": rss_mib(), "peakRssMiB": self.peak, "hwmMiB": hwm_mib()}
        if self.device.type == "cuda":
            rec["tensorPeakMiB"] = torch.cuda.max_memory_allocated() / MiB
        return rec


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_runs(fn, warmup, least, most, seconds, deadline_ms):
    for _ in range(warmup):
        t = time.perf_counter()
        fn()
        if time.perf_counter() - t > 10:  # one warm-up is enough for a slow run
            break
    times, started = [], time.perf_counter()
    while len(times) < most:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        if len(times) >= least and time.perf_counter() - started >= seconds:
            break
        if time.time() * 1000 + times[-1] > deadline_ms:
            break
    return times


class Classifier:
    """Backbone + dense head, with the two momentum-SGD optimisers of src/adapt/training_step.ts."""

    def __init__(self, name, device, head_init="default", lr_head=0.01, lr_backbone=1e-3):
        build, self.shape, feature_dim = BACKBONES[name]
        self.backbone = build()
        # Pretrained BN layers have non-zero shifts; with PyTorch's (0, 1) start the pooled features of the
        # random net are ~0 and the job's head rate, scaled by 1 / mean |f|^2, would be ~1e10.
        with torch.no_grad():
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 1.0)
        self.backbone.to(device)
        self.head = nn.Linear(feature_dim, CLASSES).to(device)
        if head_init == "zeros":
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.logits = nn.Sequential(self.backbone, self.head)
        self.head_opt = torch.optim.SGD(self.head.parameters(), lr=lr_head, momentum=0.9)
        self.backbone_opt = torch.optim.SGD(self.backbone.parameters(), lr=lr_backbone, momentum=0.9)
        self.device = device

    def step(self, x, y):
        """Forward in train mode, cross-entropy, hits, backward, both updates, read back (as adapt() steps)."""
        self.logits.train()
        out = self.logits(x)
        loss = F.cross_entropy(out, y)
        hits = (out.argmax(1) == y).sum()
        self.head_opt.zero_grad(set_to_none=True)
        self.backbone_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.head_opt.step()
        self.backbone_opt.step()
        return loss.item(), hits.item()

    @torch.inference_mode()
    def predict(self, x, batch=16):
        self.logits.eval()
        return torch.cat([self.logits(x[i : i + batch]) for i in range(0, len(x), batch)])

    @torch.inference_mode()
    def features(self, x, batch=16):
        self.backbone.eval()
        return torch.cat([self.backbone(x[i : i + batch]) for i in range(0, len(x), batch)])


def synthetic_job(shape, classes, per_class, seed=0):
    rng = np.random.default_rng(seed)
    patterns = rng.random((classes, *shape), dtype=np.float32)
    labels = np.arange(classes * per_class) % classes
    images = 0.7 * patterns[labels] + 0.3 * rng.random((len(labels), *shape), dtype=np.float32)
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


def convert_batch_norm(model, images, batch):
    """DAFT's BN conversion: per-channel input statistics of every BN layer over the images, then each layer
    re-expressed around them with the same eval-mode output (src/adapt/bn_conversion.ts). Returns the
    model's output on the images before the conversion, which the statistics pass computes on the way (as
    adapt()'s `outputAndBatchNormStatistics`)."""
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {id(m): [0.0, 0.0, 0] for m in layers}

    def hook(module, inputs, _output):
        x = inputs[0].double()
        acc = sums[id(module)]
        acc[0] = acc[0] + x.sum((0, 2, 3))
        acc[1] = acc[1] + (x * x).sum((0, 2, 3))
        acc[2] += x.numel() // x.shape[1]

    handles = [m.register_forward_hook(hook) for m in layers]
    model.eval()
    with torch.inference_mode():
        output = torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)])
    for h in handles:
        h.remove()
    with torch.no_grad():
        for m in layers:
            s, sq, n = sums[id(m)]
            mean = (s / n).float()
            var = (sq / n).float() - mean * mean
            src_std = torch.sqrt(m.running_var + m.eps)
            tgt_std = torch.sqrt(var + m.eps)
            m.bias += m.weight * (mean - m.running_mean) / src_std
            m.weight *= tgt_std / src_std
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
    return output


def linear_probe(train_f, train_y, val_f, val_y, classes, l2s=(1e-1, 1e-2, 1e-3, 1e-4), steps=200):
    """adapt()'s linear-probe baseline (src/adapt/logistic_regression.ts): softmax regressions for every L2
    strength at once, 200 full-batch Adam steps (rate 0.05), the one best on validation kept."""
    n, d, g = train_f.shape[0], train_f.shape[1], len(l2s)
    kernel = torch.zeros(d, g * classes, requires_grad=True, device=train_f.device)
    bias = torch.zeros(g, classes, requires_grad=True, device=train_f.device)
    half_l2 = torch.tensor([l2 / 2 for l2 in l2s for _ in range(classes)], device=train_f.device)
    target = F.one_hot(train_y, classes).float().unsqueeze(1).expand(n, g, classes)
    opt = torch.optim.Adam([kernel, bias], lr=0.05)
    for _ in range(steps):
        with torch.no_grad():
            logits = (train_f @ kernel).view(n, g, classes) + bias
            d_logits = (torch.softmax(logits, -1) - target) / n
            kernel.grad = train_f.t() @ d_logits.reshape(n, g * classes) + 2 * half_l2 * kernel
            bias.grad = d_logits.sum(0)
        opt.step()
    with torch.no_grad():
        hits = ((val_f @ kernel).view(len(val_f), g, classes) + bias).argmax(-1) == val_y.unsqueeze(1)
        return int(hits.float().mean(0).argmax())


def adapt_job(name, device, classes, shots, epochs, batch, lr_head, lr_backbone, val_fraction, seed=0):
    """The compute of `adapt()` with DAFT defaults, written directly: split, pretrained validation features,
    BN conversion (its statistics pass gives the training features; an output check on one batch after
    it), the linear-probe baseline on those features, zero head with the rate scaled by mean |f|^2,
    `epochs` of momentum SGD with a cosine schedule and a validation pass per epoch, best-epoch restore,
    final evaluation and adapted features, and the drift monitor's reference pass (the adapted classifier on
    every image of the job)."""
    torch.manual_seed(seed)
    clf = Classifier(name, device, head_init="zeros")
    images, labels = synthetic_job(clf.shape, classes, shots, seed)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in range(classes):
        idx = rng.permutation(np.nonzero(labels.numpy() == c)[0])
        n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
        val_idx += list(idx[:n_val])
        train_idx += list(idx[n_val:])
    started = time.perf_counter()
    train_x, train_y = images[train_idx].to(device), labels[train_idx].to(device)
    val_x, val_y = images[val_idx].to(device), labels[val_idx].to(device)
    pretrained_val = clf.features(val_x, batch)
    before = convert_batch_norm(clf.backbone, train_x, batch)
    # The conversion's output check, on the first batch; the head's rate reads the features measured before
    # it (the conversion keeps the eval output), as adapt() does.
    after = clf.features(train_x[:batch], batch)
    assert (before[:batch] - after).abs().max() < 1e-2 * (1 + before[:batch].abs().max())
    linear_probe(before, train_y, pretrained_val, val_y, classes)
    head_rate = lr_head / max(float((before**2).sum(1).mean()), 1e-6)
    initial = [p.detach().clone() for p in clf.backbone.parameters()]
    best_acc, best_state = -1.0, None
    steps, training_seconds, diverged = 0, 0.0, False
    for epoch in range(epochs):
        epoch_started = time.perf_counter()
        scale = (1 + math.cos(math.pi * epoch / epochs)) / 2
        for g in clf.head_opt.param_groups:
            g["lr"] = head_rate * scale
        for g in clf.backbone_opt.param_groups:
            g["lr"] = lr_backbone * scale
        order = torch.from_numpy(rng.permutation(len(train_idx)))
        chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
        if len(chunks) > 1 and len(chunks[-1]) < 2:
            chunks[-2] = torch.cat([chunks[-2], chunks.pop()])
        for b in chunks:
            loss, _ = clf.step(train_x[b], train_y[b])
            # adapt() would stop here; the peer goes on, so that the time is still that of the whole job.
            diverged = diverged or not math.isfinite(loss)
            steps += 1
        acc = float((clf.predict(val_x, batch).argmax(1) == val_y).float().mean())
        if acc > best_acc:
            best_acc = acc
            best_state = {k: v.detach().clone() for k, v in clf.logits.state_dict().items()}
        training_seconds += time.perf_counter() - epoch_started
    clf.logits.load_state_dict(best_state)
    clf.predict(val_x, batch).argmax(1).cpu()
    adapted_val = clf.features(val_x, batch)
    F.cosine_similarity(pretrained_val, adapted_val).mean().item()
    for p, p0 in zip(clf.backbone.parameters(), initial):
        ((p.detach() - p0) ** 2).sum().item()
    clf.predict(images.to(device), batch).cpu()
    sync(device)
    return {
        "kind": "adapt",
        "seconds": time.perf_counter() - started,
        "trainingSeconds": training_seconds,
        "classes": classes,
        "shots": shots,
        "epochs": epochs,
        "steps": steps,
        "valAccuracy": best_acc,
        "diverged": diverged,
    }


def profile_step(clf, x, y, batch):
    from torch.autograd import profiler

    started = time.perf_counter()
    with profiler.profile() as prof:
        clf.step(x, y)
    step_ms = (time.perf_counter() - started) * 1000
    rows = [
        {"name": e.key, "ms": e.self_cpu_time_total / 1000, "calls": e.count}
        for e in prof.key_averages()
        if e.self_cpu_time_total > 0
    ]
    rows.sort(key=lambda r: -r["ms"])
    return {
        "kind": "profile",
        "batch": batch,
        "stepMs": step_ms,
        "kernelMs": sum(r["ms"] for r in rows),
        "kernels": rows,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backbone", choices=sorted(BACKBONES), required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--train-batches", default="16,32")
    p.add_argument("--infer-batch", type=int, default=32)
    p.add_argument("--effort", default="{}")
    p.add_argument(
        "--job", default="10,10,10,16,32,0.01,0.2", help="classes,shots,epochs,batch,lrHead,lrBackbone,valFraction"
    )
    p.add_argument("--deadline", type=float, default=time.time() * 1000 + 3600e3)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--describe", action="store_true", help="report the architecture only, then exit")
    args = p.parse_args()
    effort = {
        "warmupSteps": 2, "minSteps": 3, "maxSteps": 8, "stepSeconds": 25,
        "latencyRuns": 200, "latencySeconds": 12, "inferRuns": 10, "inferSeconds": 12,
    }
    effort.update(json.loads(args.effort))

    if args.device == "cuda" and not torch.cuda.is_available():
        emit({"kind": "skipped", "what": "all", "reason": "this PyTorch has no usable CUDA device"})
        return
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    memory = Memory(device)
    clf = Classifier(args.backbone, device)
    shape = clf.shape
    detail = (
        f"CUDA {torch.cuda.get_device_name(0)}" if device.type == "cuda"
        else f"{torch.get_num_threads()} threads, oneDNN {torch.backends.mkldnn.is_available()}"
        + (f", ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}" if os.environ.get("ONEDNN_MAX_CPU_ISA") else "")
    )
    emit({
        "kind": "info",
        "side": "pytorch",
        "backend": device.type,
        "detail": detail,
        "backbone": args.backbone,
        "parameters": sum(p.numel() for p in clf.logits.parameters()),
        "batchNormLayers": sum(isinstance(m, nn.BatchNorm2d) for m in clf.backbone.modules()),
        "inputShape": [shape[1], shape[2], shape[0]],
        "featureDim": clf.head.in_features,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "threads": str(torch.get_num_threads()),
        },
    })

    if args.describe:
        return
    if device.type != "cuda":
        emit({"kind": "skipped", "what": "tensor peak", "reason": "PyTorch counts peak tensor memory on CUDA only"})

    def batch_of(n):
        g = torch.Generator().manual_seed(7)
        x = torch.rand((n, *shape), generator=g).to(device)
        y = (torch.arange(n) % CLASSES).to(device)
        return x, y

    # Inference first, as in the tfjs rows.
    probabilities = nn.Sequential(clf.backbone, clf.head, nn.Softmax(dim=1)).eval()
    one = batch_of(1)[0]
    many = batch_of(args.infer_batch)[0]

    def predict(x):
        def run():
            with torch.inference_mode():
                probabilities(x).cpu().numpy()

        return run

    lat = time_runs(predict(one), 3, 10, effort["latencyRuns"], effort["latencySeconds"], args.deadline)
    emit({"kind": "latency", "runs": len(lat), "p50Ms": percentile(lat, 50), "p99Ms": percentile(lat, 99)})
    ms = time_runs(predict(many), 1, 2, effort["inferRuns"], effort["inferSeconds"], args.deadline)
    emit({
        "kind": "throughput",
        "batch": args.infer_batch,
        "batchMs": ms,
        "samplesPerSec": args.infer_batch / median(ms) * 1000,
    })
    emit(memory.record())

    step_ms_at = {}
    for batch in [int(b) for b in args.train_batches.split(",")]:
        if step_ms_at:
            estimate = max(step_ms_at.values()) * batch / min(step_ms_at)
            if estimate * (effort["warmupSteps"] + effort["minSteps"]) > args.deadline - time.time() * 1000:
                emit({"kind": "skipped", "what": f"train b{batch}", "reason": "would not fit the row's time budget"})
                continue
        x, y = batch_of(batch)

        def step():
            clf.step(x, y)
            memory.sample()

        times = time_runs(
            step, effort["warmupSteps"], effort["minSteps"], effort["maxSteps"], effort["stepSeconds"],
            args.deadline,
        )
        step_ms_at[batch] = median(times)
        emit({"kind": "train", "batch": batch, "stepMs": times, "samplesPerSec": batch / median(times) * 1000})
        emit(memory.record())

    first = int(args.train_batches.split(",")[0])
    if args.profile and first in step_ms_at:
        emit(profile_step(clf, *batch_of(first), first))

    job = args.job.split(",")
    classes, shots, epochs, batch = [int(v) for v in job[:4]]
    lr_head, lr_backbone, val_fraction = [float(v) for v in job[4:7]]
    train_per_class = shots - max(1, round(shots * val_fraction))
    steps = epochs * math.ceil(classes * train_per_class / batch)
    step16 = step_ms_at.get(16, max(step_ms_at.values(), default=0))
    estimate = step16 * (steps + (epochs + 5) * classes * shots / batch / 3)
    left = args.deadline - time.time() * 1000
    if estimate > left:
        emit({
            "kind": "skipped",
            "what": "adapt",
            "reason": f"estimated {estimate / 1000:.0f} s > {left / 1000:.0f} s left of the row's budget",
        })
    else:
        del clf, probabilities
        emit(adapt_job(args.backbone, device, classes, shots, epochs, batch, lr_head, lr_backbone, val_fraction))
    emit(memory.record())


if __name__ == "__main__":
    main()
    t = os.times()
    emit({"kind": "cpu", "seconds": t.user + t.system})
