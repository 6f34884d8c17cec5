"""Evaluate's machinery: the set of poses scored (EvalSet: a target's held-out block or a separate clip), the loop over
the generators, and the outputs (Markdown table, metrics.json, strip, chart, the --dump archive). The command line,
and what each measure means, is Evaluate.py's.
"""

import contextlib
import json
import time

from deepdance.cli import UserError
from deepdance.files import ROOT, atomic_path, write_png
from deepdance.gentypes import GEN_TYPES, RENDER_BATCH, load_generator
from deepdance.metrics import BOX_MARGIN, all_metrics, body_boxes, pose_consistency
from deepdance.pose import EVAL_MARGIN, POSE_MODE, detect_poses
from deepdance.skeleton import render_maps
from deepdance.transfer import PoseNormalizer

import cv2
import numpy as np
from tqdm import tqdm

EVAL_GEN_TYPES = "all"  # which gen_types to measure: "all" or a comma list such as "1,3"
OUT_DIR = ROOT / "out" / "eval"  # results go to OUT_DIR/<target key>/ unless --out says otherwise
STRIP_FRAMES = 8  # frames (rows) in strip.png, evenly spaced over the evaluated block
FIGURE_MAX_BYTES = 300_000  # --figures pictures go into the repository: the strip drops rows until it fits
STRIP_MAX_TILE = 128  # px: strip tiles larger than this are shrunk, so the PNG stays small
POSE_MIN_SIZE = 128  # px: MediaPipe finds nobody in 64 px frames (0% of real taichi1 frames; 87% at 128)
CHART_DPI = 80
# Short names for the strip's and chart's column labels (the full descriptions are GenTypes.GEN_TYPES).
LABELS = {
    1: "nearest",
    2: "NN vec",
    3: "NN img",
    4: "GAN img",
    5: "GAN vec",
    6: "WGAN vec",
    7: "WGAN img",
    8: "temporal",
    9: "texture",
}
# (key, table header, format); lower is better for L1 and joint error, higher for PSNR, SSIM and pose found,
# sharpness, fine detail and flicker are best at 1 (the real frames' own value).
COLUMNS = (
    ("l1", "L1", "{:.4f}"),
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("box_l1", "body L1", "{:.4f}"),
    ("box_ssim", "body SSIM", "{:.3f}"),
    ("sharpness", "sharpness", "{:.2f}"),
    ("detail", "fine detail", "{:.2f}"),
    ("flicker", "flicker", "{:.2f}"),
    ("pose_found", "pose found", "{:.0%}"),
    ("pose_near", "found near", "{:.0%}"),
    ("pose_err", "joint err (% height)", "{:.1%}"),
    ("ms_per_frame", "ms/frame", "{:.1f}"),
)
CHART_METRICS = ("l1", "psnr", "ssim", "box_ssim", "sharpness", "flicker")  # the bar chart's panels


# --------------------------------------------------------------------------- what is evaluated


class EvalSet:
    """The poses to render and the frames they must match.

    xy_in (N,13,2): poses given to the generators (the target's placement); xy (N,13,2): ground-truth
    joints in the real frames; real (N,S,S,3) uint8 BGR; consecutive (N-1,) bool: frame i+1 directly
    follows frame i in the video; back: None, or a 2x3 affine taking a generated frame onto the real one;
    target_vs: the target the generators belong to (vs itself for its own blocks).
    """

    def __init__(self, name, vs, positions, xy_in, real, back=None, target_vs=None):
        self.name, self.vs, self.positions = name, vs, np.asarray(positions, np.int64)
        self.target_vs = vs if target_vs is None else target_vs  # whose generators are evaluated
        self.xy = vs.skeletons()[self.positions]
        self.xy_in = np.ascontiguousarray(xy_in, np.float32)
        self.real = real
        self.back = back
        self.consecutive = np.diff(vs.rows[self.positions]) == 1
        self.size = real.shape[1]

    def __len__(self):
        return len(self.positions)

    def to_real_space(self, fake):
        """Generated frames (N,S,S,3) -> the same in the real frames' placement (identity without --normalize)."""
        if self.back is None:
            return fake
        s = self.size
        return np.stack(
            [
                cv2.warpAffine(f, self.back, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                for f in fake
            ]
        )


def held_out_set(vs, size, block="test"):
    """The target's test (or selection) block; also returns the training positions (what gen_type 1 may copy from)."""
    blocks = vs.split()
    held = getattr(blocks, block)
    if len(blocks.train) == 0 or len(held) == 0:
        raise UserError(f"{vs} is too short to hold out a {block} block ({len(vs)} frames with a person)")
    return EvalSet(block, vs, held, vs.skeletons()[held], vs.frames(size)[held]), blocks.train


def clip_set(test_vs, target_vs, size, normalize=False):
    """Every usable frame of a separate clip; --normalize maps its poses onto the target and the outputs back."""
    positions = np.arange(len(test_vs))
    xy = test_vs.skeletons()
    back = None
    if normalize:
        norm = PoseNormalizer.fit(xy, target_vs.skeletons())
        xy_in = norm.apply(xy)
        # Inverse of xy -> (xy - src) * scale + dst, in pixel indices (pixel i covers [i, i+1) of xy * size).
        k = 1.0 / norm.scale
        t = (np.float32(norm.src_anchor) - np.float32(norm.dst_anchor) * k) * size + 0.5 * k - 0.5
        back = np.array([[k, 0.0, t[0]], [0.0, k, t[1]]], np.float64)
    else:
        xy_in = xy
    return EvalSet("clip", test_vs, positions, xy_in, test_vs.frames(size), back, target_vs)


def generate(gen, xy, batch=RENDER_BATCH, desc="generate"):
    """Poses (N,13,2) through gen.generate_clip (one clip: a coherent generator matches it whole) -> ((N,S,S,3)
    uint8, seconds)."""
    t = time.perf_counter()
    chunks = tqdm(gen.generate_clip(xy, batch), total=-(-len(xy) // batch), desc=desc, leave=False)
    return np.concatenate(list(chunks)), time.perf_counter() - t


def parse_gen_types(text):
    """'all' or '1,3' -> sorted list of gen_types; UserError for anything else."""
    if str(text).strip().lower() == "all":
        return sorted(GEN_TYPES)
    out = set()
    for part in str(text).split(","):
        try:
            g = int(part)
        except ValueError:
            raise UserError(f"--gen_type must be 'all' or numbers like 1,3; got {text!r}") from None
        if g not in GEN_TYPES:
            raise UserError(f"unknown gen_type {g} in --gen_type {text!r}; expected some of {sorted(GEN_TYPES)}")
        out.add(g)
    return sorted(out)


def leak_warning(gen, es):
    """A line if the generator saw the evaluated frames (or other footage), else None.

    Reads what generators may carry: `positions` (the frames a retrieval copies from) and `data` (a trained
    checkpoint's fingerprint: sha256, the [start, stop) train range and "val", the range best.pth was chosen on).
    """
    if es.name == "clip":
        return None
    copied = getattr(gen, "positions", None)  # a retrieval generator's frames (GenNearest)
    if copied is not None and np.intersect1d(copied, es.positions).size:
        return "it copies frames from the evaluated block: not held out"
    data = getattr(gen, "data", None)
    if not isinstance(data, dict):
        return None
    if data.get("sha256") not in (None, es.vs.meta["sha256"]):
        return f"its checkpoint was trained on other footage ({data.get('key')})"
    lo, hi = data.get("train", (0, 0))
    if lo <= es.positions[-1] and es.positions[0] < hi:
        return f"its checkpoint trained on positions {lo}-{hi - 1}, which overlap the evaluated block: not held out"
    lo, hi = data.get("val", (0, 0))
    if lo <= es.positions[-1] and es.positions[0] < hi:
        return f"its best.pth was chosen on positions {lo}-{hi - 1}, which overlap the evaluated block: optimistic"
    return None


def evaluate(es, gen_types, train, device="auto", pose=None, gen_size=None):
    """Run and measure each gen_type on an EvalSet: results {g: metrics}, outputs {g: frames}, skipped, warnings.

    gen_type 1 retrieves from the `train` positions only; types that cannot be loaded (no checkpoint, no
    code yet) are skipped with their loader's one-line note, which names the training command (skipped
    {g: line}); a measured type whose checkpoint trained on the evaluated frames gets a line in warnings.
    pose: True/False forces pose consistency on/off (default: at >= POSE_MIN_SIZE px).
    gen_size: run the generators at this size and scale their frames to es.size as the demo shows them (bilinear):
    what a smaller model looks like at the size shown (default es.size).
    """
    gen_size = gen_size or es.size
    pose = es.size >= POSE_MIN_SIZE if pose is None else pose
    results, outputs, skipped, warnings = {}, {}, {}, {}
    boxes = body_boxes(es.xy, es.size)
    for g in gen_types:
        options = {"positions": train} if GEN_TYPES[g].script == "GenNearest" else {}
        try:
            gen = load_generator(es.target_vs, g, size=gen_size, device=device, **options)
        except UserError as e:
            skipped[g] = str(e)
            continue
        fake, seconds = generate(gen, es.xy_in, desc=f"gen_type {g}")
        if gen_size != es.size and fake.ndim == 4:
            fake = np.stack([cv2.resize(f, (es.size, es.size), interpolation=cv2.INTER_LINEAR) for f in fake])
        if fake.shape != es.real.shape or fake.dtype != np.uint8:
            skipped[g] = (
                f"gen_type {g} returned {fake.dtype} frames of shape {fake.shape}, expected uint8 {es.real.shape}"
            )
            continue
        warning = leak_warning(gen, es)
        if warning:
            warnings[g] = f"WARNING gen_type {g}: {warning}"
        fake = es.to_real_space(fake)
        m = all_metrics(fake, es.real, es.xy, es.consecutive, boxes)
        if pose:
            found = detect_poses(fake, POSE_MODE, desc=f"MediaPipe on gen_type {g}", margin=EVAL_MARGIN)
            m.update(pose_consistency(found, es.xy))
        m["ms_per_frame"] = 1000.0 * seconds / len(es)
        results[g], outputs[g] = m, fake
    return results, outputs, skipped, warnings


# --------------------------------------------------------------------------- outputs


def _num(v):
    """JSON-safe float (NaN -> None)."""
    v = float(v)
    return None if not np.isfinite(v) else v


def markdown_table(results, reference=None):
    """The results as a Markdown table, one row per gen_type (columns without any value are left out)."""
    cols = [c for c in COLUMNS if any(np.isfinite(r.get(c[0], np.nan)) for r in results.values())]
    lines = [
        "| gen_type | generator | " + " | ".join(h for _, h, _ in cols) + " |",
        "|---:|---|" + "---:|" * len(cols),
    ]

    def cell(r, key, fmt):
        v = r.get(key, np.nan)
        return fmt.format(v) if np.isfinite(v) else "n/a"

    for g, r in results.items():
        lines.append(f"| {g} | {LABELS[g]} | " + " | ".join(cell(r, k, f) for k, _, f in cols) + " |")
    if reference:
        ref = {
            "l1": 0.0,
            "box_l1": 0.0,
            "ssim": 1.0,
            "box_ssim": 1.0,
            "sharpness": 1.0,
            "detail": 1.0,
            "flicker": 1.0,
            **reference,
        }
        lines.append("| - | real frames | " + " | ".join(cell(ref, k, f) for k, _, f in cols) + " |")
    return "\n".join(lines)


def _header(text, width, height=16):
    """A white-on-black text band (height, width, 3) uint8 labelling one strip column."""
    band = np.zeros((height, width, 3), np.uint8)
    scale = 0.32 if width < 96 else 0.4
    cv2.putText(band, text, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return band


def labelled_columns(columns, tile):
    """(H, W, 3) uint8 of [(label, frames (n, S, S, 3) uint8)]: each column its label over its frames (scaled to
    tile px), columns 2 px of white apart."""
    cols = []
    for name, frames in columns:
        if tile != frames[0].shape[0]:
            frames = [cv2.resize(f, (tile, tile), interpolation=cv2.INTER_AREA) for f in frames]
        cols.append(np.concatenate([_header(name, tile), *frames], axis=0))
    sep = np.full((cols[0].shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([c for col in cols for c in (col, sep)][:-1], axis=1)


def strip_image(es, outputs, n=STRIP_FRAMES, max_tile=STRIP_MAX_TILE):
    """(H, W, 3) uint8: one row per frame (n evenly spaced over the block), columns skeleton | each gen_type | real."""
    picks = np.unique(np.linspace(0, len(es) - 1, min(n, len(es))).round().astype(int))
    columns = [("skeleton", render_maps(es.xy[picks], es.size))]
    columns += [(f"{g} {LABELS[g]}", out[picks]) for g, out in outputs.items()]
    columns.append(("real", es.real[picks]))
    return labelled_columns(columns, min(es.size, max_tile))


def fit_strip(es, outputs, n, max_bytes):
    """strip_image with as many of its n rows as fit in max_bytes of PNG (at least one)."""
    while True:
        strip = strip_image(es, outputs, n)
        if n == 1 or len(cv2.imencode(".png", strip, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]) <= max_bytes:
            return strip
        n -= 1


def write_chart(path, results, title):
    """Bar chart PNG of the main metrics, one panel per metric, one bar per gen_type (deterministic bytes), written
    to `path` as it is (write_outputs gives it a temporary name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {k: h for k, h, _ in COLUMNS}
    gens = list(results)
    fig, axes = plt.subplots(1, len(CHART_METRICS), figsize=(2.0 * len(CHART_METRICS), 2.6), dpi=CHART_DPI)
    for ax, key in zip(axes, CHART_METRICS, strict=True):
        vals = [results[g].get(key, np.nan) for g in gens]
        vals = [v if v is not None and np.isfinite(v) else 0.0 for v in vals]
        bars = ax.bar(range(len(gens)), vals, color=[f"C{g - 1}" for g in gens])
        ax.bar_label(bars, fmt="%.3g", fontsize=6, rotation=90, padding=2)
        ax.margins(y=0.35)
        ax.set_xticks(range(len(gens)), [str(g) for g in gens], fontsize=8)
        ax.set_title(names[key] + (" (1 = real)" if key in ("sharpness", "flicker") else ""), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if key in ("sharpness", "flicker"):
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
    fig.suptitle(title, fontsize=9)
    fig.supxlabel("gen_type", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def write_dump(path, es, outputs, results, boxes):
    """npz of uint8 frames (real, skeleton maps, each gen_type's outputs), joints, boxes and the reported numbers,
    written to `path` as it is (write_outputs gives it a temporary name)."""
    names = [k for k, _, _ in COLUMNS if k not in ("ms_per_frame",)] + ["tdiff", "tdiff_real"]
    arrays = {
        "real": es.real,  # (N, S, S, 3) uint8 BGR: the ground truth
        "skeleton": render_maps(es.xy_in, es.size),  # (N, S, S, 3) uint8: the input skeleton maps
        "xy": es.xy.astype(np.float32),  # (N, 13, 2) ground-truth joints in [0, 1] (they place the boxes)
        "xy_input": es.xy_in,  # (N, 13, 2) the poses the generators were given
        "box": boxes,  # (N, 4) int32 body boxes x0, y0, x1, y1 (end-exclusive)
        "consecutive": es.consecutive,  # (N-1,) bool: frame i+1 follows frame i
        "positions": es.positions,
        "gen_types": np.array(list(outputs), np.int64),
        "metric_names": np.array(names),
        "box_margin": np.float64(BOX_MARGIN),
        # (x0, y0, side) in source-frame pixels of the upright video: the square the frames were cut from (it may
        # reach past the picture, padded black), so the image space can be rebuilt from the raw video
        "crop": np.asarray(es.vs.crop, np.int64),
    }
    for g, fake in outputs.items():
        arrays[f"fake_{g}"] = fake  # (N, S, S, 3) uint8 BGR
        arrays[f"metrics_{g}"] = np.array([results[g].get(k, np.nan) for k in names], np.float64)
    save_npz(path, arrays)


def save_npz(path, arrays):
    """np.savez_compressed's file, written so that a full disk is one OSError: np.savez leaves its ZipFile open when a
    write fails, and the ZipFile's __del__ then tries to finish the file on the broken stream and prints a
    traceback. A `with` closes it in place (its second failure is the same OSError)."""
    import zipfile

    with open(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, value in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(value), allow_pickle=False)


def write_outputs(*, out, figures, dump, meta, table, notes, es, outputs, results, boxes, title, strip_frames):
    """Every output file, as one set: all are written under temporary names first and renamed only once all of them
    are complete, so a full disk never leaves a new metrics.json next to the old pictures. -> the paths written."""
    jobs = [
        (out / "metrics.json", lambda p: p.write_text(json.dumps(meta, indent=1))),
        (out / "table.md", lambda p: p.write_text(table + "\n\n" + "\n".join(f"- {line}" for line in notes) + "\n")),
        (out / "strip.png", lambda p: write_png(p, strip_image(es, outputs, strip_frames))),
        (out / "chart.png", lambda p: write_chart(p, results, title)),
    ]
    if figures is not None:
        jobs += [
            (
                figures / "eval_strip.png",
                lambda p: write_png(p, fit_strip(es, outputs, strip_frames, FIGURE_MAX_BYTES)),
            ),
            (figures / "eval_chart.png", lambda p: write_chart(p, results, title)),
        ]
    if dump is not None:
        jobs.append((dump, lambda p: write_dump(p, es, outputs, results, boxes)))
    with contextlib.ExitStack() as stack:
        for path, write in jobs:
            write(stack.enter_context(atomic_path(path)))
    return [path for path, _ in jobs]


# --------------------------------------------------------------------------- CLI
