"""The gen_type table: one number per generator, shared by every script, checkpoint and README table.

Each entry names the module that provides the generator, the command that trains it, its checkpoint folder
and the trainer's settings that select it (GenVanillaNN's variant, GenGAN's mode / input / temporal).
`load_generator(vs, gen_type)` imports that module only when asked: this file imports no torch, so
`DanceDemo.py --gen_type 1` never loads it.
"""

import importlib
import shlex
from pathlib import Path
from typing import NamedTuple

from deepdance.cli import UserError
from deepdance.files import ROOT

SIZE = 64  # px: the generators' frame side by default (the course's); 128 is trained with --size 128
RENDER_BATCH = 64  # poses per generate_batch call when a whole clip is rendered (DanceDemo, Evaluate)


class GenType(NamedTuple):
    description: str
    script: str  # the top-level script that trains it (its name, as in the training command)
    train: str | None  # training command template ({video} = the target video, {force} = its positional force, where
    # it takes one: true / false); None: nothing to train
    folder: str | None  # checkpoint folder under data/checkpoints/<target>/, without its "-<size>" suffix
    settings: dict  # the trainer's options that select this type


GEN_TYPES = {
    1: GenType("nearest neighbour: the target frame with the closest skeleton", "GenNearest", None, None, {}),
    2: GenType("VanillaNN from the 26-vector", "GenVanillaNN", "python GenVanillaNN.py {video} {force} 1",
               "vanilla-vector", {"variant": 1}),
    3: GenType("VanillaNN from the skeleton image", "GenVanillaNN", "python GenVanillaNN.py {video} {force} 2",
               "vanilla-image", {"variant": 2}),
    4: GenType("GAN (BCE), skeleton image", "GenGAN", "python GenGAN.py {video} --mode bce --input image",
               "gan-bce-image", {"mode": "bce", "input": "image", "temporal": False}),
    5: GenType("GAN (BCE), 26-vector", "GenGAN", "python GenGAN.py {video} --mode bce --input vector",
               "gan-bce-vector", {"mode": "bce", "input": "vector", "temporal": False}),
    6: GenType("WGAN-GP, 26-vector", "GenGAN", "python GenGAN.py {video} --mode wgan-gp --input vector",
               "gan-wgan-gp-vector", {"mode": "wgan-gp", "input": "vector", "temporal": False}),
    7: GenType("WGAN-GP, skeleton image", "GenGAN", "python GenGAN.py {video} --mode wgan-gp --input image",
               "gan-wgan-gp-image", {"mode": "wgan-gp", "input": "image", "temporal": False}),
    8: GenType("temporal GAN", "GenGAN", "python GenGAN.py {video} --temporal", "gan-temporal",
               {"input": "image", "temporal": True}),
    9: GenType("texture: the nearest frame, moved and corrected by a U-Net", "GenTexture",
               "python GenTexture.py {video}", "texture", {}),
}  # fmt: skip


# The package module holding each script's generator class and load_generator (imported on first use).
LIBRARY = {"GenNearest": "deepdance.nearest", "GenVanillaNN": "deepdance.vanilla", "GenGAN": "deepdance.gan",
           "GenTexture": "deepdance.texture"}  # fmt: skip


def gen_type_of(script, **settings):
    """The gen_type `script` provides with these trainer settings (e.g. GenGAN, mode="bce", input="image")."""
    for g, spec in GEN_TYPES.items():
        if spec.script == script and all(settings.get(k) == v for k, v in spec.settings.items()):
            return g
    raise UserError(f"{script} provides no gen_type with {settings}")


def train_command(gen_type, video=None, size=SIZE, *, framing=None, force=False):
    """The exact command (run from the project root) that trains gen_type on `video` (None: the sample target), in
    the target's framing (None: the default; a target's is vs.framing). force: the command that trains it again
    over a best.pth that is there (damaged, foreign): the plain one would only say it is trained already."""
    spec = GEN_TYPES[gen_type]
    if spec.train is None:
        return None
    if video is None:
        from deepdance import mannequin

        video = mannequin.clip_path("target")
    video = Path(video).resolve()
    shown = video.relative_to(ROOT) if video.is_relative_to(ROOT) else video
    positional = "{force}" in spec.train  # GenVanillaNN's reference CLI: <video> <force> <variant>
    cmd = spec.train.format(video=shlex.quote(str(shown)), force=str(force).lower())
    cmd += f" --size {size}" if size != SIZE else ""
    if framing is not None:
        from deepdance.cache import FRAMING

        cmd += f" --framing {framing}" if framing != FRAMING else ""
    return cmd + (" --force" if force and not positional else "")


def train_command_for(vs, gen_type, size=SIZE, *, force=False):
    """train_command on the target vs (a VideoSkeleton): its video, in its framing (test doubles may have none)."""
    return train_command(gen_type, vs.video_path, size, framing=getattr(vs, "framing", None), force=force)


def shown_size(gen_type, size, panel):
    """The side a generator renders at for a panel `panel` px wide: retrieval (nothing trained) copies stored frames,
    so it renders at the panel's size instead of being upscaled; a trained type at the size it was trained at."""
    return size if GEN_TYPES[gen_type].train else panel


def checkpoint_dir(vs, gen_type, size=SIZE):
    """The default folder of gen_type's checkpoints on a target: data/checkpoints/<target key>/<folder>-<size>/."""
    return vs.model_dir(f"{GEN_TYPES[gen_type].folder}-{size}")


def generator_module(gen_type, video=None):
    """Import the module that provides gen_type; UserError naming the training command if it is absent."""
    if gen_type not in GEN_TYPES:
        raise UserError(f"unknown gen_type {gen_type}; expected one of {sorted(GEN_TYPES)}")
    spec = GEN_TYPES[gen_type]
    library = LIBRARY.get(spec.script, f"deepdance.{spec.script}")
    try:
        return importlib.import_module(library)
    except ModuleNotFoundError as e:
        if e.name != library:
            raise
        raise UserError(
            f"gen_type {gen_type} ({spec.description}) needs {library}, which this checkout lacks; "
            f"once it is there, train it with: {train_command(gen_type, video)}"
        ) from None


def load_generator(vs, gen_type, *, size=SIZE, device="auto", **options):
    """A ready generator of gen_type for the target vs (its module's load_generator, imported on first use).

    A trained type without a checkpoint raises a UserError that names its training command.
    """
    module = generator_module(gen_type, getattr(vs, "video_path", None))
    return module.load_generator(vs, gen_type, size=size, device=device, **options)
