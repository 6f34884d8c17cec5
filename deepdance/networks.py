"""The networks, pix2pix's networks.py: the generators (skeleton map or 26-vector -> image) and the
discriminators (conditional PatchGAN at several scales, pix2pixHD).

    UNet              skeleton map (B, 3, S, S) -> image (B, 3, S, S), gen_type 3 and the image GANs' netG
    VectorToImage     26-vector (B, 26) -> image (B, 3, S, S), gen_type 2 and the vector GANs' netG
    MultiscaleDiscriminator   (skeleton map, image) pairs -> patch logits and features at NUM_D scales

Each is rebuilt from the `model_args` a checkpoint stores: `net_class(variant)(**model_args)` (nanoGPT's way).
Images are in [-1, 1], BGR channel order.
"""

import math

from deepdance.cli import UserError
from deepdance.gentypes import SIZE
from deepdance.skeleton import N_JOINTS, maps_to_tensor_layout, render_maps

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NDF = 32  # discriminator base width (pix2pix's 64 is sized for 256 px frames; 32 halves D's CPU time at 64 px)
NUM_D = 2  # discriminator scales (full and half resolution)
D_NORMS = ("instance", "batch", "spectral")


# --------------------------------------------------------------------------- generators


def _conv_bn_act(cin, cout, k=3, stride=1, act="relu"):
    """Conv (no bias: BatchNorm follows) + BatchNorm + ReLU / LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if stride == 1 else 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True) if act == "lrelu" else nn.ReLU(inplace=True),
    )


def _up_bn_relu(cin, cout):
    """x2 upsampling by a 4x4 stride-2 transposed conv (cheaper than upsample + 3x3 conv) + BN + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ResBlock(nn.Module):
    """Two 3x3 convs with a residual skip: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class SelfAttention(nn.Module):
    """SAGAN self-attention over all H*W positions; gamma starts at 0 so the block starts as the identity."""

    def __init__(self, c):
        super().__init__()
        self.dk = max(8, c // 8)
        self.qkv = nn.Conv2d(c, 2 * self.dk + c, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):  # (B, C, H, W)
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).flatten(2).transpose(1, 2).split([self.dk, self.dk, c], dim=-1)  # (B, HW, *)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]  # (B, HW, C)
        return x + self.gamma * out.transpose(1, 2).reshape(b, c, h, w)


class UpSkip(nn.Module):
    """Decoder stage: x2 upsample, concatenate the encoder's skip, fuse with a 3x3 conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.up = _up_bn_relu(cin, cout)
        self.fuse = _conv_bn_act(2 * cout, cout)

    def forward(self, x, skip):
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """Skeleton map -> image (gen_type 3, and GenGAN's generator): U-Net, residual blocks + self-attention at the
    bottleneck. (B, in_ch, S, S) in [-1, 1] -> (B, out_ch, S, S) in [-1, 1].

    ps = 2 folds each 2x2 pixel block into channels on the way in (pixel_unshuffle) and unfolds the output
    (pixel_shuffle): no information is lost, and no layer runs at full resolution, where small-channel convs
    are slowest on CPU.
    """

    def __init__(self, size=SIZE, in_ch=3, out_ch=3, ch=(32, 64, 128, 256), n_res=2, attn=True, ps=1):
        super().__init__()
        ch = tuple(ch)
        if size % (ps * 2 ** (len(ch) - 1)):
            raise ValueError(f"size {size} is not divisible by ps * 2**(len(ch) - 1) = {ps * 2 ** (len(ch) - 1)}")
        self.size, self.ps = size, ps
        self.stem = _conv_bn_act(in_ch * ps * ps, ch[0], 3, 1, "lrelu")
        self.down = nn.ModuleList(_conv_bn_act(ch[i], ch[i + 1], 4, 2, "lrelu") for i in range(len(ch) - 1))
        mid = [ResBlock(ch[-1]) for _ in range(n_res)]
        if attn:
            mid.insert(len(mid) // 2, SelfAttention(ch[-1]))
        self.mid = nn.Sequential(*mid)
        self.up = nn.ModuleList(UpSkip(ch[i + 1], ch[i]) for i in reversed(range(len(ch) - 1)))
        self.head = nn.Conv2d(ch[0], out_ch * ps * ps, 3, 1, 1)

    def forward(self, x):
        h = self.stem(F.pixel_unshuffle(x, self.ps) if self.ps > 1 else x)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = self.mid(skips.pop())
        for up in self.up:
            h = up(h, skips.pop())
        h = self.head(h)
        return torch.tanh(F.pixel_shuffle(h, self.ps) if self.ps > 1 else h)


class SE(nn.Module):
    """Squeeze-and-excitation for feature vectors: each feature rescaled by a gate computed from all of them."""

    def __init__(self, d, reduction=4):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(d, d // reduction), nn.ReLU(inplace=True), nn.Linear(d // reduction, d))

    def forward(self, x):  # (B, D)
        return x * torch.sigmoid(self.gate(x))


class MLPBlock(nn.Module):
    """Residual MLP block with SE: x + SE(Linear(ReLU(BN(Linear(x)))))."""

    def __init__(self, d):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True), nn.Linear(d, d), SE(d)
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class VectorToImage(nn.Module):
    """26-vector -> image (gen_type 2): residual MLP with SE blocks, then a ConvTranspose2d decoder from 4x4.

    (B, in_dim) in [-1, 1] -> (B, 3, S, S) in [-1, 1], S = ps * 4 * 2**(len(ch) - 1); ps as in UNet.
    """

    def __init__(self, size=SIZE, in_dim=2 * N_JOINTS, hidden=512, n_blocks=3, ch=(256, 128, 64, 32), ps=2, fourier=0):
        super().__init__()
        ch = tuple(ch)
        if size != ps * 4 * 2 ** (len(ch) - 1):
            raise ValueError(f"size {size} != ps * 4 * 2**(len(ch) - 1) = {ps * 4 * 2 ** (len(ch) - 1)}")
        self.size, self.ps, self.fourier = size, ps, fourier
        # Fourier features (sin/cos of the coordinates at `fourier` octaves) let an MLP express sharp functions of
        # position, which plain coordinates make it learn slowly (Tancik et al. 2020).
        self.inp = nn.Sequential(nn.Linear(in_dim * (1 + 2 * fourier), hidden), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(MLPBlock(hidden) for _ in range(n_blocks)))
        # The raw input joins the MLP's features (a long skip) so exact joint positions reach the decoder.
        self.to_map = nn.Linear(hidden + in_dim, ch[0] * 16)
        self.bn0 = nn.BatchNorm2d(ch[0])
        self.up = nn.Sequential(
            *(
                nn.Sequential(_up_bn_relu(ch[i], ch[i + 1]), _conv_bn_act(ch[i + 1], ch[i + 1]))
                for i in range(len(ch) - 1)
            )
        )
        self.head = nn.Conv2d(ch[-1], 3 * ps * ps, 3, 1, 1)

    def encode(self, v):
        """(B, in_dim) -> (B, in_dim * (1 + 2 * fourier)): the coordinates and their Fourier features."""
        if not self.fourier:
            return v
        f = v[:, None, :] * (math.pi * 2.0 ** torch.arange(self.fourier, device=v.device, dtype=v.dtype))[:, None]
        return torch.cat([v, f.sin().flatten(1), f.cos().flatten(1)], dim=1)

    def forward(self, v):  # (B, in_dim)
        h = self.blocks(self.inp(self.encode(v)))
        h = self.to_map(torch.cat([h, v], dim=1)).view(len(v), -1, 4, 4)  # (B, ch0, 4, 4)
        h = self.head(self.up(F.relu(self.bn0(h))))
        return torch.tanh(F.pixel_shuffle(h, self.ps) if self.ps > 1 else h)


def net_class(variant):
    """The network class of a variant: 1 -> VectorToImage, 2 -> UNet."""
    return VectorToImage if variant == 1 else UNet


def build_net(variant, model_args):
    """The network of a variant, rebuilt from its model_args (as nanoGPT's GPT(GPTConfig(**model_args)))."""
    return net_class(variant)(**model_args)


def pose_input(xy, variant, size):
    """Network input for (N, 13, 2) joints in [0, 1]: variant 1 (N, 26), variant 2 (N, 3, S, S) maps; both in [-1, 1].

    The same transform as PoseDataset.batch, for poses that are not in a dataset (inference, augmentation).
    """
    xy = np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2)
    if variant == 1:
        return torch.from_numpy(xy.reshape(len(xy), -1) * 2.0 - 1.0)
    return torch.from_numpy(maps_to_tensor_layout(render_maps(xy, size)))


# --------------------------------------------------------------------------- discriminators


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN: (B, in_ch, S, S) -> every layer's features, the last (B, 1, S/2^n - 2, S/2^n - 2) logits.

    Each logit judges one patch; the intermediate features feed pix2pixHD's feature-matching loss.
    norm: "instance" (per-sample statistics, as the gradient penalty needs: BatchNorm mixes samples), "batch", or
    "spectral" (every conv's weight divided by its largest singular value, Miyato et al.: D stays 1-Lipschitz).
    """

    def __init__(self, in_ch=6, ndf=NDF, n_layers=2, norm="instance"):
        super().__init__()
        if norm not in D_NORMS:
            raise UserError(f"discriminator norm must be one of {D_NORMS}, not {norm!r}")
        sn = norm == "spectral"

        def conv(cin, cout, stride, bias=True):
            c = nn.Conv2d(cin, cout, 4, stride, 1, bias=bias)
            return nn.utils.parametrizations.spectral_norm(c) if sn else c

        def block(cin, cout, stride, normed):
            normed = normed and not sn
            layers = [conv(cin, cout, stride, bias=not normed)]
            if normed:
                layers.append(nn.InstanceNorm2d(cout, affine=True) if norm == "instance" else nn.BatchNorm2d(cout))
            return nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))

        ch = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        layers = [block(in_ch, ch[0], 2, False)]
        layers += [block(ch[i - 1], ch[i], 2, True) for i in range(1, n_layers)]
        layers += [block(ch[n_layers - 1], ch[n_layers], 1, True), conv(ch[n_layers], 1, 1)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's discriminator: num_D PatchGANs, each on the input downsampled once more than the previous.

    (B, in_ch, S, S) -> [features of D_1 at S, of D_2 at S/2, ...]; the coarse ones see the global layout.
    """

    def __init__(self, in_ch=6, ndf=NDF, n_layers=2, norm="instance", num_D=NUM_D):
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(in_ch, ndf, n_layers, norm) for _ in range(num_D))

    def forward(self, x):
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(net(x))
        return out
