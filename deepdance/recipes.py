"""What a frame size means for every net and every size-dependent loss weight, decided in one place: size_recipe.

The trainers build their nets from it and store the result as each net's model_args in the checkpoint, which the
generators rebuild with Net(**model_args); nothing else turns a size into an architecture.
"""

import math
from typing import NamedTuple

from deepdance.adversarial import D_T_FRAMES
from deepdance.cli import UserError
from deepdance.networks import NDF, NUM_D
from deepdance.skeleton import N_JOINTS

# gen_type 9's TextureNet around gen_type 3's U-Net:
TEXTURE_IN_CH = 11  # query skeleton map, reference frame, reference skeleton map (3 channels each), joint flow (2)
MAX_FLOW = 0.5  # the flow's largest displacement, in grid units (2 = the frame side): a quarter of the frame
# How the reference frame is resampled by the flow: bicubic keeps more of its finest detail than bilinear, which
# averages up to 4 pixels wherever the flow is not a whole pixel (docs/EXPERIMENTS.md, MediaPipe's nets as losses).
INTERP = "bicubic"
PRIOR = True  # start the flow from the joints' own displacements (texture.joint_flow); the U-Net corrects it
# gen_type 9's weight of 1 - SSIM against L1, by frame size (larger sizes take 128's): it asks for detail where L1
# would blur; at 128 px a larger weight tips the net from moving real pixels to painting a person MediaPipe cannot
# find (docs/EXPERIMENTS.md, the texture entries).
TEXTURE_LAMBDA_SSIM = {64: 3.0, 128: 0.8}


class SizeRecipe(NamedTuple):
    size: int  # frame side, px
    unet: dict  # gen_type 3's U-Net (networks.UNet), also the image GANs' netG
    vector: dict  # gen_type 2's 26-vector net (networks.VectorToImage), also the vector GANs' netG
    netD: dict  # the per-frame discriminator (networks.MultiscaleDiscriminator)
    netD_T: dict  # the temporal GAN's discriminator over D_T_FRAMES frames
    texture: dict  # gen_type 9's TextureNet
    texture_lambda_ssim: float  # gen_type 9's weight of 1 - SSIM

    def generator(self, variant):
        """model_args of gen_type 2's net (variant 1, from the 26-vector) or gen_type 3's (variant 2, the map)."""
        return dict(self.vector if variant == 1 else self.unet)


def size_recipe(size):
    """Every net's model_args and the size-dependent loss weights at a frame side of `size` px (a multiple of 32)."""
    if size % 32 or size < 32:
        raise UserError(f"--size must be a multiple of 32 (64 and 128 are tested), got {size}")
    unet = _unet(size)
    ssim = TEXTURE_LAMBDA_SSIM[max([s for s in TEXTURE_LAMBDA_SSIM if s <= size], default=min(TEXTURE_LAMBDA_SSIM))]
    return SizeRecipe(
        size=size,
        unet=unet,
        vector=_vector(size),
        netD=_discriminator(size, frames=1, num_D=NUM_D),
        netD_T=_discriminator(size, frames=D_T_FRAMES, num_D=1),
        texture={
            "unet": {**unet, "in_ch": TEXTURE_IN_CH, "out_ch": 6},
            "max_flow": MAX_FLOW,
            "prior": PRIOR,
            "interp": INTERP,
        },
        texture_lambda_ssim=ssim,
    )


def _unet(size):
    # The convolutions run at 32x32 from 64 px up (bottleneck with residual blocks + self-attention at 8x8): ps folds
    # each (S / 32)^2 pixel block into channels on the way in and unfolds it at the end, so 128 px costs about 2x the
    # 64 px net (its first level 48 channels wide, not 32, to carry the 4x4 blocks) instead of the ~4.5x of one more
    # full-resolution level, which keeps 128 px trainable on a 2-core CPU. 256 px (CUDA): ps 8, 64 channels.
    ps = max(2, size // 32)
    c0 = {2: 32, 4: 48}.get(ps, 64)
    levels = int(math.log2(size // (8 * ps)))  # down to 8x8
    return {"size": size, "in_ch": 3, "out_ch": 3, "ch": [c0 * 2**i for i in range(levels + 1)], "n_res": 2,
            "attn": True, "ps": ps}  # fmt: skip


def _vector(size):
    ups = int(math.log2(size // 8))  # 4x4 -> size / 2, then pixel_shuffle
    return {"size": size, "in_dim": 2 * N_JOINTS, "hidden": 512, "n_blocks": 3,
            "ch": [256 // 2**i for i in range(ups + 1)], "ps": 2, "fourier": 6}  # fmt: skip


def _discriminator(size, *, frames, num_D):
    # Conditioned on skeleton maps: 6 channels per frame. log2(size / 16) stride-2 layers: 2 at 64 px, so 34 px
    # patches, about half the frame (3 would see 70 px, more than the frame); the half-resolution D sees the layout.
    return {"in_ch": 6 * frames, "ndf": NDF, "n_layers": max(1, int(math.log2(size / 16))), "norm": "instance",
            "num_D": num_D}  # fmt: skip
