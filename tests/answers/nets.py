"""Small real networks the answers are checked on, in torch (random weights, float64 in tests)."""

import torch
from torch import nn
import torch.nn.functional as F


def _block(cin, cout, d=1, dims=2):
    Conv, BN = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
    return nn.Sequential(Conv(cin, cout, 3, padding=d, dilation=d), BN(cout), nn.ReLU(),
                         Conv(cout, cout, 3, padding=d, dilation=d), BN(cout), nn.ReLU())


class UNet(nn.Module):
    """Two poolings down, two transposed convs up, skip concats: the grid is 4 pixels."""

    def __init__(self, c=4):
        super().__init__()
        self.enc1, self.enc2, self.mid = _block(1, c), _block(c, 2 * c), _block(2 * c, 4 * c)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = _block(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = _block(2 * c, c)
        self.head = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNetFCN(nn.Module):
    """ResNet stem, residual blocks to stride 8, a 1x1 head, bilinear back to the input grid."""

    def __init__(self, c=4):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 7, 2, 3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Basic(c, c, 1), Basic(c, c, 1))
        self.layer2 = nn.Sequential(Basic(c, 2 * c, 2), Basic(2 * c, 2 * c, 1))
        self.head = nn.Conv2d(2 * c, 3, 1)

    def forward(self, x):
        y = self.head(self.layer2(self.layer1(self.pool(F.relu(self.stem(x))))))
        return F.interpolate(y, scale_factor=8, mode="bilinear", align_corners=False)


class Dilated(nn.Module):
    """A context-aggregation stack: 3x3 convs dilated 1, 2, 4, 8, 1 (stride 1 throughout)."""

    def __init__(self, c=4):
        super().__init__()
        layers, cin = [], 1
        for d in (1, 2, 4, 8, 1):
            layers += [nn.Conv2d(cin, c, 3, padding=d, dilation=d), nn.ReLU()]
            cin = c
        self.body = nn.Sequential(*layers, nn.Conv2d(c, 2, 1))

    def forward(self, x):
        return self.body(x)


class TCN(nn.Module):
    """A non-causal 1-D TCN: residual blocks of two dilated k3 convs, dilations 1, 2, 4, 8."""

    def __init__(self, c=4, dilations=(1, 2, 4, 8)):
        super().__init__()
        self.inp = nn.Conv1d(1, c, 1)
        self.blocks = nn.ModuleList(_block(c, c, d, dims=1) for d in dilations)
        self.out = nn.Conv1d(c, 1, 1)

    def forward(self, x):
        x = self.inp(x)
        for b in self.blocks:
            x = x + b(x)
        return self.out(x)


class CausalConv(nn.Conv1d):
    """A conv padded on the left only (kernel - 1) * dilation: output t reads inputs <= t."""

    def forward(self, x):
        return super().forward(F.pad(x, ((self.kernel_size[0] - 1) * self.dilation[0], 0)))


class WaveNet(nn.Module):
    """WaveNet's dilated causal stack: kernel 2, dilations 1..512, three times; gated residual
    layers (tanh * sigmoid) with 1x1 skips (no ReLU at the end: gradients reach every tap)."""

    def __init__(self, c=2, repeats=3):
        super().__init__()
        self.inp = nn.Conv1d(1, c, 1)
        self.dil = nn.ModuleList(CausalConv(c, 2 * c, 2, dilation=2 ** i)
                                 for _ in range(repeats) for i in range(10))
        self.res = nn.ModuleList(nn.Conv1d(c, c, 1) for _ in self.dil)
        self.out = nn.Conv1d(c, 1, 1)

    def forward(self, x):
        x = self.inp(x)
        skip = 0
        for dil, res in zip(self.dil, self.res):
            a, b = dil(x).chunk(2, 1)
            h = torch.tanh(a) * torch.sigmoid(b)
            x = x + res(h)
            skip = skip + h
        return self.out(skip)


def seeded(cls, *args, seed=0, **kw):
    """The network in float64 and eval mode, with random weights and BatchNorm statistics."""
    torch.manual_seed(seed)
    m = cls(*args, **kw).double().eval()
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
    return m


class TinyFPN(nn.Module):
    """A detector-like backbone + FPN: stride-2 stages to C3/C4/C5 (strides 8/16/32), 1x1
    laterals, a nearest-upsampled top-down path and 3x3 output convs; returns [P3, P4, P5]."""

    def __init__(self, c=8):
        super().__init__()

        def stage(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = stage(3, c)                     # stride 2
        self.c2, self.c3 = stage(c, c), stage(c, 2 * c)          # 4, 8
        self.c4, self.c5 = stage(2 * c, 2 * c), stage(2 * c, 4 * c)  # 16, 32
        self.lat = nn.ModuleList(nn.Conv2d(k, c, 1) for k in (2 * c, 2 * c, 4 * c))
        self.out = nn.ModuleList(nn.Conv2d(c, c, 3, 1, 1) for _ in range(3))

    def forward(self, x):
        c3 = self.c3(self.c2(self.stem(x)))
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        l5 = self.lat[2](c5)
        l4 = self.lat[1](c4) + F.interpolate(l5, scale_factor=2, mode="nearest")
        l3 = self.lat[0](c3) + F.interpolate(l4, scale_factor=2, mode="nearest")
        return [self.out[0](l3), self.out[1](l4), self.out[2](l5)]


class ChannelsLast(nn.Module):
    """A conv stem, then a stage on (N, H, W, C) maps (Swin's layout): a token MLP, and a conv
    after permuting back; ``stage`` is a channels-last module output whose C equals its W."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.stage = nn.Sequential(nn.Linear(8, 8), nn.GELU())
        self.head = nn.Conv2d(8, 4, 5)

    def forward(self, x):
        y = self.stage(self.stem(x).permute(0, 2, 3, 1))
        return self.head(y.permute(0, 3, 1, 2))
