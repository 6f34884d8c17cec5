"""The adversarial machinery the GAN trainers share (GenGAN, GenTexture's --lambda_adv): the discriminator's
model_args, the losses (BCE / Wasserstein, pix2pixHD feature matching, WGAN-GP's gradient penalty) and the
validation score best.pth is chosen by (body-box SSIM against sharpness).

Below the Gen* scripts; the networks themselves are in Networks.py.
"""

import math

from deepdance.metrics import body_boxes, flicker, image_metrics, sharpness_ratio

import torch
import torch.nn.functional as F

LAMBDA_GP = 10.0  # WGAN-GP gradient penalty
D_T_FRAMES = 3  # consecutive frames the temporal discriminator sees
SHARP_WEIGHT = 0.05  # best.pth: val box SSIM - SHARP_WEIGHT * |ln sharpness| (see val_score)


# --------------------------------------------------------------------------- the discriminator


# --------------------------------------------------------------------------- losses


def critic_score(pred):
    """Per-sample score of a multi-scale prediction: mean over patches, averaged over scales. -> (B,)."""
    return torch.stack([p[-1].float().flatten(1).mean(1) for p in pred]).mean(0)


def gan_loss(pred, target_is_real, mode):
    """Adversarial loss of a multi-scale prediction: BCE on every patch logit, or the Wasserstein critic's mean."""
    losses = []
    for p in pred:
        logits = p[-1].float()
        if mode == "bce":
            target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
            losses.append(F.binary_cross_entropy_with_logits(logits, target))
        else:
            losses.append(-logits.mean() if target_is_real else logits.mean())
    return sum(losses) / len(losses)


def feature_matching(pred_fake, pred_real):
    """pix2pixHD: L1 between D's features of fake and (fixed) real pairs, averaged over layers and scales."""
    losses = [
        F.l1_loss(f.float(), r.detach().float()) for pf, pr in zip(pred_fake, pred_real, strict=True)
        for f, r in zip(pf[:-1], pr[:-1], strict=True)
    ]  # fmt: skip
    return sum(losses) / len(losses)


def gradient_penalty(critic, real, fake, lambda_gp=LAMBDA_GP, generator=None):
    """WGAN-GP: lambda_gp * E[(||grad_x critic(x)||_2 - 1)^2] at random points x between real and fake samples.

    critic: (B, ...) -> (B,) scores; real, fake: (B, ...) tensors of the same shape (fake detached).
    """
    eps = torch.rand(len(real), generator=generator).to(real.device).view(-1, *[1] * (real.dim() - 1))
    x = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return lambda_gp * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


# --------------------------------------------------------------------------- validation


def val_score(metrics, weight=SHARP_WEIGHT):
    """best.pth's criterion: body-box SSIM, minus weight x |ln sharpness| (blur and over-sharpening both cost).

    SSIM alone would always pick the blurriest epoch, i.e. undo the GAN; the weight trades 0.02 box SSIM for
    sharpness 0.67 -> 1.
    """
    s = metrics.get("sharpness", float("nan"))
    penalty = abs(math.log(s)) if s > 0 and math.isfinite(s) else 10.0
    return metrics["box_ssim"] - weight * penalty


def val_metrics(val, val_fake):
    """Validation metrics of netG's outputs on the ValBlock, with best.pth's score (val_score)."""
    metrics = image_metrics(val_fake, val.real, val.xy)
    metrics["sharpness"] = sharpness_ratio(val_fake, val.real, body_boxes(val.xy, val.real.shape[1]))
    metrics["flicker"] = flicker(val_fake, val.real, val.consecutive)["flicker"]
    metrics["score"] = val_score(metrics)
    return metrics
