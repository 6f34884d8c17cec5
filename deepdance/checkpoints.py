"""Checkpoints: one dict per file, written atomically, read with weights_only=True and checked before use.

save_checkpoint / load_checkpoint   atomic torch.save; a safe load that names what is wrong and the fix
build_from_checkpoint, load_weights a net holding a checkpoint's weights, all checked by check_weights first: keys,
                                    shapes, dtypes, finite values, BatchNorm variances >= 0
resume_checkpoint, resumed_config   --resume: the run's latest.pth, on the same data, as it was configured
best_checkpoint, check_same_data    a generator's best.pth, trained on this target in this image space
"""

import csv
import shlex
import shutil
import sys
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from deepdance.cli import UserError
from deepdance.files import ROOT, atomic_path
from deepdance.gentypes import checkpoint_dir, train_command_for

import torch

CKPT_KEYS = ("model", "model_args", "gen_type", "config")  # what every checkpoint needs to rebuild its generator
RESUME_KEYS = ("rng", "epoch", "step", "train_seconds", "best", "config", "data")  # what --resume needs as well
PLAN_FIELDS = ("epochs", "time_budget")  # what --resume may change (a longer run); the device is always this machine's


def save_checkpoint(ckpt, path):
    """torch.save one dict atomically: a crash or a full disk mid-write leaves the previous file intact."""
    with atomic_path(path) as tmp:
        try:
            torch.save(ckpt, tmp)
        except RuntimeError as e:  # torch's zip writer says "unexpected pos" when the disk fills up
            free = shutil.disk_usage(Path(path).parent).free / 2**20
            raise UserError(f"cannot write checkpoint {path}: {free:.0f} MB free there (disk full?); the previous "
                            f"checkpoint is intact ({str(e).splitlines()[0][:80]})") from None  # fmt: skip


def checkpoint_size(ckpt):
    """The frame side (px) a checkpoint was trained at, from its config (the one place it is stored); None if absent."""
    config = ckpt.get("config")
    size = config.get("size") if isinstance(config, dict) else None
    return None if size is None else int(size)


def load_checkpoint(path, *, fmt, gen_type=None, size=None, keys=CKPT_KEYS, fix=None):
    """Load a checkpoint dict safely (weights_only) and check it is what the caller expects; UserError if not.

    fix: what to do about an unreadable or incomplete file (e.g. "retrain it ..."), appended to those messages.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    then = f"; {fix}" if fix else ""
    if path.stat().st_size == 0:  # a copy or a save cut short: torch.load says only "EOFError", with no text
        raise UserError(f"checkpoint {path} is empty (0 bytes: a copy or a save that did not finish){then}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, foreign pickle, ...: one line, not a traceback
        raise UserError(f"cannot read checkpoint {path}: {error_line(e, 120)}{then}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise UserError(f"{path} is not a {fmt} checkpoint{then}")
    # Another gen_type or size first: that names the fix, where a list of missing keys would not.
    if gen_type is not None and ckpt.get("gen_type", gen_type) != gen_type:
        raise UserError(f"checkpoint {path} is for gen_type {ckpt['gen_type']}, not {gen_type}")
    stored = checkpoint_size(ckpt)
    if size is not None and stored is not None and stored != size:
        raise UserError(f"checkpoint {path} is for size {stored}, not {size}: pass --size {stored}")
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}: damaged or from another version{then}")
    return ckpt


@contextmanager
def unusable(what, fix, net=None):
    """Turns what a damaged or foreign checkpoint raises while it is used into one UserError naming it and the fix.

    what: e.g. "checkpoint <path>"; net: the class it was meant for, named in the message.
    """
    try:
        yield
    except UserError:
        raise
    except Exception as e:  # size mismatch (RuntimeError), unknown model_args (TypeError), missing entry (KeyError)...
        # load_state_dict's first line only says "Error(s) in loading state_dict"; the second names the tensor.
        detail = error_line(e, 160, line=1)
        whose = f"'s {net}" if net else ""
        raise UserError(f"{what} does not fit this version{whose} ({detail}): {fix}") from None


def error_line(e, width, *, line=0):
    """An exception as "Type: its text" on one line (its `line`-th non-blank line, or the last), cut to width
    characters; "Type" alone when it has no text (EOFError, KeyboardInterrupt...)."""
    lines = [text.strip() for text in str(e).splitlines() if text.strip()]
    detail = f"{type(e).__name__}: {lines[min(line, len(lines) - 1)]}" if lines else type(e).__name__
    return detail if len(detail) <= width else detail[: width - 3] + "..."


def check_weights(state, expected, *, what, fix):
    """The one validation of a checkpoint's weights, before any net holds them: UserError naming `what` and `fix`
    for a tensor of another dtype than the net's (load_state_dict would silently cast an int64 or bool one), NaN or
    inf values (black frames; in a frozen base, a crash), or a BatchNorm running variance below 0 (normalising by
    the square root of a negative number: black frames). expected: the net's own state_dict."""
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            continue  # load_state_dict names it (unusable)
        want = expected.get(name)
        if want is not None and t.dtype != want.dtype:
            raise UserError(f"{what} is damaged: tensor {name} is {t.dtype}, not {want.dtype}; {fix}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise UserError(f"{what} is damaged: tensor {name} holds NaN or inf values; {fix}")
        if name.endswith("running_var") and t.is_floating_point() and (t < 0).any():
            raise UserError(f"{what} is damaged: tensor {name} (a BatchNorm variance) holds negative values; {fix}")


def load_weights(net, state, *, what, fix):
    """net holding the weights `state` once check_weights passed them; UserError if they do not fit -> net."""
    with unusable(what, fix, type(net).__name__):
        check_weights(state, net.state_dict(), what=what, fix=fix)
        net.load_state_dict(state)
    return net


def build_from_checkpoint(cls, model_args, state, *, what, fix):
    """cls(**model_args) holding the weights `state` (nanoGPT's rebuild), checked by check_weights; UserError if
    the checkpoint does not fit (other keys or shapes, unknown model_args)."""
    with unusable(what, fix, cls.__name__):
        net = cls(**model_args)
    return load_weights(net, state, what=what, fix=fix)


def resume_checkpoint(vs, *, out, fingerprint, fmt, gen_type, size, force, keys=()):
    """out/latest.pth checked for --resume: there, readable, complete and trained on this data; else a UserError.

    force: the option that starts over ("force=true", "--force"), named in the messages.
    """
    path = Path(out) / "latest.pth"
    if not path.is_file():
        scratch = train_command_for(vs, gen_type, size)
        if Path(out).resolve() != checkpoint_dir(vs, gen_type, size).resolve():
            shown = Path(out).resolve()
            scratch += f" --out {shlex.quote(str(shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown))}"
        raise UserError(f"nothing to resume: checkpoint not found: {path}; train from scratch with {scratch}")
    fix = f"start over with {force}"
    state = load_checkpoint(path, fmt=fmt, gen_type=gen_type, size=size, keys=(*CKPT_KEYS, *RESUME_KEYS, *keys),
                            fix=fix)  # fmt: skip
    with unusable(f"checkpoint {path}", fix):
        data = state["data"]
        if data["sha256"] != fingerprint["sha256"] or data["params"] != fingerprint["params"]:
            raise UserError(f"{path} was trained on other data ({data['key']}): use {force}")
    return state


def resumed_config(cfg, stored, *, path, force):
    """The configuration a resumed run continues with: the run's own (`stored`, its checkpoint's), with cfg's plan
    (epochs, time budget, device) where cfg sets one. Any other setting cfg sets that differs from the run's is a
    contradiction: UserError naming it (--resume continues the run as it was configured).

    What cfg sets: cfg.typed, the fields the user typed on the command line (options.config_from_args), judged
    whatever their value (`--lr 0.002`, the default, on a run at 5e-4 is a contradiction too); a config made in code
    (cfg.typed None) sets the fields that differ from their defaults.
    A setting added after the run was written takes the value that reproduces how that run trained, where the
    config class names one (its BEFORE: {field: stored config -> value}), else today's default."""
    defaults = type(cfg)()
    names = {f.name for f in fields(cfg)}
    before = getattr(cfg, "BEFORE", {})
    typed = getattr(cfg, "typed", None)
    with unusable(f"checkpoint {path}", f"start over with {force}"):
        merged = {k: v for k, v in stored.items() if k in names}
        merged |= {k: then(stored) for k, then in before.items() if k not in stored}
        for f in fields(cfg):
            mine, default = getattr(cfg, f.name), getattr(defaults, f.name)
            theirs = merged.get(f.name, default)  # what the run trained with
            sets = f.name in typed if typed is not None else mine != default
            if f.name == "device" or (f.name in PLAN_FIELDS and (sets or f.name not in merged)):
                merged[f.name] = mine
            elif sets and _differs(mine, theirs):
                raise UserError(f"{path} is a run with {f.name} {theirs}; --resume continues it as it was: drop the "
                                f"{f.name} {mine} option, or start over with {force}")  # fmt: skip
        return type(cfg)(**merged)


def resumed_log(state, out):
    """train_log.csv rows of the run being resumed: its checkpoint's copy (older checkpoints: the CSV), or none."""
    if not state:
        return []
    if "log" in state:
        return state["log"]
    path = Path(out) / "train_log.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def checkpoint_bytes(*nets):
    """About what one training's checkpoints take on disk: weights + Adam's two moments, latest.pth and best.pth,
    plus a temporary copy while one is replaced (checked before training: a full disk stops it before epoch 1)."""
    n = sum(p.numel() for net in nets for p in net.parameters())
    return 3 * 3 * 4 * n + (8 << 20)


def _differs(a, b):
    seq = list | tuple
    return (list(a) != list(b)) if isinstance(a, seq) and isinstance(b, seq) else a != b


def restore_progress(state, *, path, force, rng, optimizers, score):
    """Optimizer and RNG states of the checkpoint being resumed -> (epoch, step, train_seconds, best).

    optimizers: (optimizer, checkpoint key) pairs; score: the key of `best` that picks best.pth.
    """
    with unusable(f"checkpoint {path}", f"start over with {force}"):
        for opt, key in optimizers:
            opt.load_state_dict(state[key])
        rng.set_state(state["rng"])
        best = dict(state["best"])
        best[score] = float(best[score])  # checked now, not when the first epoch ends
        return int(state["epoch"]), int(state["step"]), float(state["train_seconds"]), best


def best_checkpoint(vs, gen_type, size):
    """Path of gen_type's best.pth on this target; UserError with the exact training command if there is none."""
    path = checkpoint_dir(vs, gen_type, size) / "best.pth"
    if not path.exists():
        cmd = train_command_for(vs, gen_type, size)
        raise UserError(f"no checkpoint for gen_type {gen_type} on {vs.video_path.stem}: train it with {cmd}")
    return path


def start_checkpoint(vs, *, gen_type, size, fmt, fingerprint, fix):
    """Another gen_type's best.pth that a training run starts from (GenGAN's netG) or builds on (GenTexture's base):
    -> (checkpoint dict with "_path", None), or (None, the problem in words) when there is none or it was trained on
    other data or another train/select/test split (its weights may have seen this run's selection or test frames).
    UserError (naming `fix`) for a file that is there but unreadable."""
    path = checkpoint_dir(vs, gen_type, size) / "best.pth"
    if not path.exists():
        cmd = train_command_for(vs, gen_type, size)
        return None, f"no gen_type {gen_type} checkpoint at {path}; train it with {cmd}"
    ckpt = load_checkpoint(path, fmt=fmt, gen_type=gen_type, size=size, fix=fix)
    with unusable(f"checkpoint {path}", fix):
        data = ckpt.get("data", {})
        if any(data.get(k) != fingerprint[k] for k in ("sha256", "params", "train", "val", "test")):
            return None, f"{path} was trained on other data or another train/select/test split than this run"
    ckpt["_path"] = str(path)
    return ckpt, None


def check_same_data(gen, vs, *, allow_foreign=False):
    """A generator's checkpoint must have been trained on this target's footage, in its image space (its data
    fingerprint: the video's hash and extraction params): a best.pth copied from another project would render
    another person, one trained on the centre crop of a video now framed on the person would draw it at the wrong
    place. UserError, or with allow_foreign a warning line."""
    data = gen.data if isinstance(gen.data, dict) else {}
    meta = getattr(vs, "meta", None) or {}
    theirs, ours = data.get("sha256"), meta.get("sha256")
    # Before cache version 2 no framing was recorded: those frames were the centre crop.
    params = [{"framing": "center", **(p or {})} for p in (data.get("params"), meta.get("params"))]
    differ = [f"{k} {params[0].get(k)} (this cache: {params[1].get(k)})" for k in sorted(params[0] | params[1])
              if params[0].get(k) != params[1].get(k)]  # fmt: skip
    # The plain training command would only say "already trained" over this file: the fix retrains over it.
    retrain = f"retrain it with {train_command_for(vs, gen.gen_type, gen.size, force=True)}"
    if theirs is None and ours is not None:  # every trainer records it: a file without one was edited or is foreign
        line = f"{gen.what} holds no data fingerprint (its data sha256), so it cannot be shown to be trained on " \
               f"{vs.key}; {retrain}"  # fmt: skip
    elif theirs is not None and ours is not None and theirs != ours:
        line = f"{gen.what} was trained on other footage ({data.get('key', 'unknown')}), not on {vs.key}: it would " \
               f"render that person; {retrain}"  # fmt: skip
    elif theirs is not None and differ:
        line = f"{gen.what} was trained on frames of this video extracted with other settings: {', '.join(differ)}; " \
               f"{retrain}"  # fmt: skip
    else:
        return
    if not allow_foreign:
        raise UserError(line)
    print(f"warning: {line} (used anyway: allow_foreign)", file=sys.stderr)
