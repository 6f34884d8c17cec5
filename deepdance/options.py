"""The command line the trainers share (pix2pix's options/): the common arguments, their checks, the config they
make, and opening the target (or saying it is trained already).
"""

from dataclasses import fields
from functools import partial

from deepdance.checkpoints import check_same_data, unusable
from deepdance.cli import UserError
from deepdance.distributed import setup_ranks
from deepdance.gentypes import checkpoint_dir
from deepdance.trainer import busy_line, describe_metrics, folder_busy


def report_trained(path, load, force_option, *, vs):
    """Print `already trained` for best.pth once it has loaded whole (load(path) -> its TrainedGenerator) and proved
    to be this target's (vs): a damaged or foreign file is reported now, not by the next demo."""
    gen = load(path)
    check_same_data(gen, vs)
    with unusable(f"checkpoint {path}", f"retrain it ({force_option})"):
        line = describe_metrics({"epoch": gen.epoch, **gen.val})
    print(f"already trained: {path} ({line}); {force_option} retrains, --resume continues")


def trained_already(out, *, retrain, force_option, load, vs):
    """True (said: report_trained) when out/best.pth is there and retrain is off. UserError while another training
    writes to out: its best.pth is a model half-trained, not a finished one, and a second run there would mix two."""
    if folder_busy(out):
        raise UserError(busy_line(out))
    trained = not retrain and (out / "best.pth").exists()
    if trained:
        report_trained(out / "best.pth", load, force_option, vs=vs)
    return trained


def checkpoint_out(out, vs, gen_type, size):
    """A trainer's checkpoint folder: --out under the output rule (deepdance.files.output_path: not the target
    video, the sample or a cache), or the target's default folder."""
    from deepdance.files import output_path

    if not out:
        return checkpoint_dir(vs, gen_type, size)
    return output_path(out, option="--out", folder=True, inputs=(vs.video_path,))


def open_target(video, cfg, *, gen_type, out, retrain, force_option, load, framing):
    """A trainer CLI's start: (ranks, the target's VideoSkeleton, the checkpoint folder), or None when best.pth is
    there and retrain (force or --resume) is off: rank 0 then reports it (report_trained; load(path, gen_type=,
    size=) -> its generator). Under torchrun every rank opens the target, and a problem on any stops them all.
    framing: the target's square, "person" or "center" (--framing)."""
    from deepdance.cache import VideoSkeleton

    opened = partial(VideoSkeleton, video, framing=framing)

    ranks = setup_ranks(cfg.device)  # a missing GPU fails before any video work; under torchrun: meet the others
    ranks.split_batch(cfg.batch)  # more processes than --batch frames: said before any video work too
    with ranks.together():  # rank 0 first: it extracts an uncached video (with its progress bar) ...
        vs = opened() if ranks.main else None
    with ranks.together():  # ... then the others load its cache (another node: extract their own, quietly)
        vs = vs if vs is not None else opened(verbose=False)
        out = checkpoint_out(out, vs, gen_type, cfg.size)
        trained = not retrain and (out / "best.pth").exists()  # every rank decides alike, on the same files
        if ranks.main:
            load = partial(load, gen_type=gen_type, size=cfg.size)
            trained_already(out, retrain=retrain, force_option=force_option, load=load, vs=vs)
    return None if trained else (ranks, vs, out)


def add_training_args(p, d, *, lr, lr_help, epochs_help, folder):
    """The arguments the trainers take: the target video, then --epochs .. --aug_prob (defaults from the config d)."""
    from deepdance.cache import add_framing_arg

    p.add_argument("video", nargs="?", default=None, help="target video (default: the built-in sample)")
    p.add_argument("--epochs", type=int, default=0, help=epochs_help)
    p.add_argument("--time_budget", type=float, default=0.0, metavar="MINUTES",
                   help="train this long instead of --epochs; schedules follow the clock (default off)")  # fmt: skip
    p.add_argument("--batch", type=int, default=d.batch, help=f"frames per batch (default {d.batch})")
    p.add_argument("--lr", type=float, default=lr, help=f"{lr_help} (default {lr})")
    p.add_argument(
        "--size",
        type=int,
        default=d.size,
        choices=(64, 128, 256),
        help=f"frame side in px (default {d.size}; 256: a CUDA GPU)",
    )
    p.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"), help="(default auto: cuda if any)")
    p.add_argument("--resume", action="store_true", help="continue latest.pth: its epochs, optimizers, schedule, RNG")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--out", default=None, help=f"checkpoint folder (default data/checkpoints/<target>/{folder})")
    add_framing_arg(p, "the target's square")
    add_perceptual_args(p, d)
    p.add_argument("--aug_prob", "--aug", type=float, default=d.aug_prob,
                   help=f"share of samples augmented (default {d.aug_prob})")  # fmt: skip
    p.add_argument(
        "--lambda_L1",
        type=float,
        nargs="+",
        default=list(d.lambda_L1),
        metavar="W",
        help=f"pixel L1 weight: one number, or START END for a linear schedule over training (default "
        f"{' '.join(f'{v:g}' for v in d.lambda_L1)})",
    )


def add_perceptual_args(p, d):
    """--lambda_feat, --lambda_pose, --lambda_presence, --lambda_selfie: MediaPipe's nets as loss terms."""
    g = p.add_argument_group("MediaPipe loss terms (docs/training.md)")
    for name, what in (
        ("feat", "pose-net features inside the person's box"),
        ("pose", "BlazePose's joints on the generated frame vs the input skeleton"),
        ("presence", "-log BlazePose's person flag on the generated frame"),
        ("selfie", "selfie mask of the generated frame vs the real one's"),
    ):
        default = getattr(d, f"lambda_{name}")
        g.add_argument(f"--lambda_{name}", type=float, default=default, help=f"{what} (default {default:g})")
    g.add_argument(
        "--mp_frames",
        type=int,
        default=d.mp_frames,
        help=f"frames of each batch those terms score, a random sample (default {d.mp_frames}; 0: all)",
    )


def check_training_args(a, force, force_option):
    """UserError for what add_training_args' values cannot mean; force: whether force_option (start over) is on."""
    if force and a.resume:
        raise UserError(f"{force_option} (start over) and --resume (continue) contradict each other: pick one")
    if a.epochs < 0 or a.batch < 2 or a.lr <= 0 or a.time_budget < 0 or not 0 <= a.aug_prob <= 1:
        raise UserError("need --epochs >= 0, --batch >= 2, --lr > 0, --time_budget >= 0 and --aug_prob in [0, 1]")
    if min(a.lambda_feat, a.lambda_pose, a.lambda_presence, a.lambda_selfie, a.mp_frames) < 0:
        raise UserError("need --lambda_feat, --lambda_pose, --lambda_presence, --lambda_selfie and --mp_frames >= 0")
    if len(a.lambda_L1) > 2 or min(a.lambda_L1) < 0:
        raise UserError(f"--lambda_L1 takes one weight or START END, all >= 0; got {' '.join(map(str, a.lambda_L1))}")


def parse_typed(p, argv=None):
    """p.parse_args(argv) -> (its namespace, the set of destinations the user typed). argparse fills in defaults
    where nothing was typed, so a value alone cannot tell `--lr 0.002` (typed, the default) from no --lr at all; a
    second parse with every default a marker leaves the marker where nothing was typed (--resume judges the typed
    ones against the run)."""
    a = p.parse_args(argv)
    # An object, not argparse.SUPPRESS: an optional positional's default string would be converted and checked.
    unset, saved = object(), [(action, action.default) for action in p._actions]
    try:
        for action, _ in saved:
            action.default = unset
        typed, _ = p.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    return a, {dest for dest, value in vars(typed).items() if value is not unset}


def config_from_args(cls, a, *, typed=None, **options):
    """A config dataclass from parsed arguments: each field from the argument of its name, or of options[field].
    typed (parse_typed's): the arguments typed; the config records its fields among them as cfg.typed."""
    given = vars(a)
    names = {f.name: options.get(f.name, f.name) for f in fields(cls)}
    cfg = cls(**{field: given[name] for field, name in names.items() if name in given})
    if typed is not None:
        cfg.typed = {field for field, name in names.items() if name in typed}
    return cfg
