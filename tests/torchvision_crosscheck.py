#!/usr/bin/python3
"""Cross-checks paretopipe against real PyTorch and torchvision.

For every zoo model: builds the torchvision model (10 classes, random weights,
randomized batch-norm statistics), saves its state_dict() with torch.save as a
Python user would, then checks that
  * `paretopipe run --weights` on a torch.save'd input reproduces torchvision's
    output (max abs diff <= 1e-4 x max |output|);
  * running the model as two stages (`--to k`, then `--from k`) does too;
  * `paretopipe cuts --json` counts exactly the multiply-accumulates of the
    model's Conv2d and Linear layers (1000 classes, nominal input), measured
    here with forward hooks.
Exits 77 (CTest's skip) when torch or torchvision cannot be imported.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import torchvision
except ImportError as e:  # pragma: no cover
    print(f"SKIP: needs Debian's python3-torch and python3-torchvision ({e})")
    sys.exit(77)

# model -> (small test input side, a middle cut index)
MODELS = {
    "mobilenet_v2": (64, 7),
    "resnet18": (64, 4),
    "resnet50": (64, 9),
    "vgg16": (32, 17),
    "alexnet": (64, 6),
    "inception_v3": (75, 10),
}
NOMINAL = {"inception_v3": 299}


def torchvision_model(name, num_classes):
    # torchvision's defaults, as a user gets them: inception_v3 with its
    # training-only auxiliary classifier, whose weights paretopipe skips.
    kwargs = {"init_weights": True} if name == "inception_v3" else {}
    return getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **kwargs)


def count_macs(model, side):
    total = [0]

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            total[0] += output.numel() * k
        elif isinstance(module, torch.nn.Linear):
            total[0] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    for h in handles:
        h.remove()
    return total[0]


def run(binary, *args):
    proc = subprocess.run([binary, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: paretopipe {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def relative_error(got, expected):
    return ((got - expected).abs().max() / expected.abs().max()).item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--paretopipe", required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(2)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            side, cut = MODELS[name]
            torch.manual_seed(0)
            model = torchvision_model(name, 10).eval()
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
            weights = os.path.join(tmp, f"{name}.pth")
            torch.save(model.state_dict(), weights)
            x = torch.randn(2, 3, side, side)
            with torch.no_grad():
                expected = model(x)
            inp, out, mid = (os.path.join(tmp, f) for f in ("in.pt", "out.pt", "mid.pt"))
            torch.save(x, inp)

            common = ["--num-classes", "10", "--weights", weights, "--threads", "2"]
            run(args.paretopipe, "run", name, *common, "-i", inp, "-o", out)
            whole = relative_error(torch.load(out), expected)
            run(args.paretopipe, "run", name, *common, "--to", str(cut), "-i", inp, "-o", mid)
            run(args.paretopipe, "run", name, *common, "--from", str(cut), "-i", mid, "-o", out)
            split = relative_error(torch.load(out), expected)

            nominal = NOMINAL.get(name, 224)
            cuts = json.loads(run(args.paretopipe, "cuts", name, "--json"))
            macs_expected = count_macs(torchvision_model(name, 1000).eval(), nominal)
            ok = whole <= 1e-4 and split <= 1e-4 and cuts["macs"] == macs_expected
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name:13s} whole: rel. max diff {whole:.2e}; "
                  f"split at {cut}: {split:.2e}; MACs {cuts['macs']:,} vs hooks {macs_expected:,}")
            os.remove(weights)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
