#!/usr/bin/env python3
"""Shift-tolerant LPIPS (AlexNet) of the outputs written by `varsr eval HR_DIR --out DIR`.

DIR holds hr/ and one folder per method (bicubic/, cfg6/, ...), same file names. Prints the mean
ST-LPIPS of each method against hr/ (lower is better).

Needs: pip install torch torchvision stlpips-pytorch ipython torchsummary pillow numpy
(plain PyPI; torch is large; stlpips-pytorch imports IPython and torchsummary without declaring them)
Usage: scripts/lpips.py DIR
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from stlpips_pytorch import stlpips


def load(path):
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def main():
    root = sys.argv[1]
    metric = stlpips.LPIPS(net="alex", variant="shift_tolerant")
    metric.eval()
    hr_dir = os.path.join(root, "hr")
    names = sorted(os.listdir(hr_dir))
    methods = sorted(d for d in os.listdir(root) if d != "hr" and os.path.isdir(os.path.join(root, d)))
    print(f"{'method':<12} {'ST-LPIPS':>9}  ({len(names)} images)")
    for m in methods:
        vals = []
        for n in names:
            p = os.path.join(root, m, n)
            if not os.path.exists(p):
                continue
            a, b = load(os.path.join(hr_dir, n)), load(p)
            # The tokenizer's reconstructions cover whole latent cells: compare the common top-left part.
            h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
            with torch.no_grad():
                vals.append(float(metric(a[:, :, :h, :w], b[:, :, :h, :w])))
        if vals:
            print(f"{m:<12} {np.mean(vals):>9.4f}")


if __name__ == "__main__":
    main()
