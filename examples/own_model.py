"""Your own PyTorch model: an FPN-style top-down path (upsample + add) and a U-Net skip concat.

``rfgraph.analyze(model, input_shape=...)`` traces the model's ops (functional calls included)
and names nodes after your modules; ``analysis.module(name)`` answers "what does this see?".
Nearest upsampling by 2 in a top-down path is a real (if small) misalignment: the coarse map's
features are reused for two fine positions, and rfgraph's alignment report says so.
Run: ``python examples/own_model.py``.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import rfgraph


class TinyFPNUNet(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU())
        self.down1 = nn.Sequential(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU())
        self.lateral1 = nn.Conv2d(c, c, 1)
        self.smooth = nn.Conv2d(c, c, 3, padding=1)
        self.up = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.head = nn.Conv2d(2 * c, 1, 3, padding=1)

    def forward(self, x):
        s = self.stem(x)
        c1 = self.down1(s)
        c2 = self.down2(c1)
        # FPN top-down: upsample the coarse map and add the lateral connection
        p1 = self.smooth(F.interpolate(c2, scale_factor=2, mode="nearest") + self.lateral1(c1))
        # U-Net: learnable upsampling, then concatenate the skip connection
        return self.head(torch.cat([self.up(p1), s], dim=1))


if __name__ == "__main__":
    a = rfgraph.analyze(TinyFPNUNet(), input_shape=(3, 64, 64))
    print(rfgraph.format_table(a))
    for name in ("down2", "smooth", "head"):
        rec = a.module(name)
        print(f"{name}: rf {rec.rf}, jump {rec.jump}, exact summary {rec.exact}")
    lo, hi = a.module("head").bounds(0)
    print(f"head, rows: feature 0 sees pixels {lo[0]}..{hi[0]}, feature 32 sees {lo[32]}..{hi[32]}")
    for m in a.misaligned():
        print(f"misaligned join {m.node}: centres differ by {m.offsets}")
