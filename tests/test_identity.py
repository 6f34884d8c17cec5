"""Training is deterministic: the same run twice on one machine gives bit-for-bit the same weights, optimizer states,
RNG state and train_log.csv (but for the clock's columns), for every training mode. Tiny nets at 32 px on the
synthetic FakeVS, one thread.

Bits are compared between two runs in the same test, never against numbers recorded elsewhere: another CPU model
rounds differently (oneDNN and MKL pick their kernels by it) without anything being wrong.
"""

import csv
import hashlib

from deepdance import gan, texture, vanilla

import numpy as np
import pytest
import torch

from conftest import FakeVS

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_G = {"image": {"ch": [8, 16], "n_res": 1}, "vector": {"hidden": 32, "n_blocks": 1, "ch": [16, 16, 8]}}
TINY_TEXTURE = {
    "unet": {"size": 32, "in_ch": 11, "out_ch": 6, "ch": [8, 16], "n_res": 1, "attn": False, "ps": 2},
    "max_flow": 0.5,
    "prior": True,
}
CLOCK = {"seconds", "img_per_s", "data_share", "it_per_s"}  # train_log.csv's columns that read the clock


class TimedVS(FakeVS):
    fps = 10.0  # GenTexture keeps each frame's time


def digest(obj, h=None):
    """sha256 over nested dicts / lists / tensors / numbers, in a fixed order."""
    h = h or hashlib.sha256()
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(str(k).encode())
            digest(obj[k], h)
    elif isinstance(obj, list | tuple):
        for v in obj:
            digest(v, h)
    elif isinstance(obj, torch.Tensor):
        h.update(str(obj.dtype).encode() + str(tuple(obj.shape)).encode())
        h.update(obj.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    else:
        h.update(repr(obj).encode())
    return h


def fingerprint(out):
    """{part: sha256} of a finished run's latest.pth (weights, optimizers, RNG) and train_log.csv."""
    ckpt = torch.load(out / "latest.pth", map_location="cpu", weights_only=True)
    with open(out / "train_log.csv", newline="") as f:
        log = [{k: v for k, v in r.items() if k not in CLOCK} for r in csv.DictReader(f)]
    parts = {
        "weights": [ckpt[k] for k in ("model", "netD", "netD_T") if ckpt.get(k) is not None],
        "optimizer": [ckpt[k] for k in ckpt if k.startswith("optimizer") and ckpt[k] is not None],
        "rng": ckpt["rng"],
        "log": log,
    }
    return {k: digest(v).hexdigest()[:16] for k, v in parts.items()}


def vanilla_run(out, variant):
    tiny = TINY_G["image" if variant == 2 else "vector"]
    cfg = vanilla.VanillaConfig(variant=variant, epochs=2, batch=8, size=32, device="cpu", model_args=tiny)
    vanilla.train(TimedVS(out.parent, n=40), cfg, out=out, verbose=False)


def gan_run(out, mode, input, temporal):
    cfg = gan.GANConfig(mode=mode, input=input, temporal=temporal, size=32, epochs=2, batch=8,
                        g_args=TINY_G[input], d_args={"ndf": 8}, device="cpu", init_from_vanilla=False)  # fmt: skip
    gan.train(TimedVS(out.parent, n=40), cfg, out=out, verbose=False)


def texture_run(out, lambda_adv):
    cfg = texture.TextureConfig(size=32, epochs=2, batch=8, model_args=TINY_TEXTURE, base="none", device="cpu",
                                lambda_adv=lambda_adv)  # fmt: skip
    texture.train(TimedVS(out.parent, n=40), cfg, out=out, verbose=False)


def twice(tmp_path, run, *args):
    """The run done twice into two folders -> the two fingerprints."""
    prints = []
    for k in (1, 2):
        out = tmp_path / f"run{k}" / "out"
        run(out, *args)
        prints.append(fingerprint(out))
    return prints


@pytest.mark.parametrize("variant", [1, 2])
def test_vanilla_training_is_deterministic(tmp_path, variant):
    first, second = twice(tmp_path, vanilla_run, variant)
    assert first == second


@pytest.mark.parametrize(
    "mode, input, temporal",
    [("bce", "image", False), ("bce", "vector", False), ("wgan-gp", "image", False), ("wgan-gp", "vector", False),
     ("bce", "image", True), ("wgan-gp", "image", True)],
)  # fmt: skip
def test_gan_training_is_deterministic(tmp_path, mode, input, temporal):
    first, second = twice(tmp_path, gan_run, mode, input, temporal)
    assert first == second


@pytest.mark.parametrize("lambda_adv", [0.0, 0.05])
def test_texture_training_is_deterministic(tmp_path, lambda_adv):
    first, second = twice(tmp_path, texture_run, lambda_adv)
    assert first == second


def test_a_different_seed_changes_the_fingerprint(tmp_path):
    """The comparison can fail: another seed gives other weights, optimizer states, RNG and log."""
    cfgs = [vanilla.VanillaConfig(variant=2, epochs=1, batch=8, size=32, device="cpu", model_args=TINY_G["image"],
                                  seed=seed) for seed in (1, 2)]  # fmt: skip
    prints = []
    for k, cfg in enumerate(cfgs):
        out = tmp_path / f"run{k}" / "out"
        vanilla.train(TimedVS(out.parent, n=40), cfg, out=out, verbose=False)
        prints.append(fingerprint(out))
    assert all(prints[0][part] != prints[1][part] for part in ("weights", "optimizer", "rng", "log"))


def test_digest_sees_a_one_bit_change():
    a = {"w": torch.zeros(3)}
    b = {"w": torch.tensor([0.0, 0.0, np.nextafter(0, 1, dtype=np.float32)])}
    assert digest(a).hexdigest() != digest(b).hexdigest()
