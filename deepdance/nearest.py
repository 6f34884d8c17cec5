"""gen_type 1, the nearest-neighbour baseline: the target frame whose skeleton is closest to the query, plain (a KD-tree
over the 26-vectors) or coherent over a clip (Viterbi over the K nearest frames, trading pose distance against jumps
in the target's time), with the stored frames memory-mapped. The command line is GenNearest.py's.
"""

import mmap

from deepdance.cli import UserError
from deepdance.files import write_png
from deepdance.gentypes import RENDER_BATCH, SIZE
from deepdance.metrics import pose_error, temporal_diff
from deepdance.skeleton import L_HIP, R_HIP, Skeleton, body_height, normalize, render_maps
from deepdance.video import square_frame

import cv2
import numpy as np

FEATURES = "absolute"  # what is matched: "absolute" = the 26-vector in the target's frame (the reference's;
# the query must already be mapped onto the target's placement), "pose" = hip-centred and height-scaled
# (placement-blind), "mixed" = "pose" plus the hip position weighted by POSITION_WEIGHT. "absolute" gave
# the lowest image error on the targets' own validation blocks (taichi1 13.2/255 vs 13.4-13.7 for the others,
# sample 4.3 vs 4.4-5.8) and the lowest joint error after taichi2 -> taichi1 transfer.
FEATURE_CHOICES = ("absolute", "pose", "mixed")
POSITION_WEIGHT = 1.0  # "mixed": weight of the hip position (body heights) against the pose (body heights per joint)
COHERENT = False  # plain nearest neighbour by default, as the reference
K = 16  # coherent mode: candidates per step (the K nearest target frames)
JUMP_WEIGHT = 2.0  # coherent mode: cost of a 1 s jump in the target's time, in units of the clip's median
# nearest-neighbour distance (so it means the same on a close and on a loose match). On taichi2 -> taichi1
# K=16, 2.0 cut the jumps by three quarters for a few % more joint error (python -m bench.demo).
JUMP_CAP = 2.0  # s: a longer jump costs the same as this one (a cut is a cut, however far)


# --------------------------------------------------------------------------- matching maths


def pose_features(xy, features=FEATURES, height=None):
    """(N,13,2) joints in [0,1] -> (N,D) float32 matching features (see FEATURES)."""
    xy = np.asarray(xy, np.float32).reshape(-1, 13, 2)
    if features == "absolute":
        return xy.reshape(len(xy), 26)
    pose = normalize(xy)  # (N, 26), hip-centred, in body heights
    if features == "pose":
        return pose
    if features == "mixed":
        h = float(np.median(body_height(xy))) if height is None else height
        hips = 0.5 * (xy[:, L_HIP] + xy[:, R_HIP]) / max(h, 1e-6)
        return np.concatenate([pose, POSITION_WEIGHT * hips], axis=1).astype(np.float32)
    raise ValueError(f"unknown features {features!r}; expected one of {FEATURE_CHOICES}")


def viterbi(unary, times, jump_weight=JUMP_WEIGHT, jump_cap=JUMP_CAP):
    """Cheapest path through T steps of k candidates: unary (T,k) costs, times (T,k) in s -> (T,) choices.

    A path pays the unary cost of every candidate it visits plus jump_weight * min(|time jump|, jump_cap)
    between consecutive steps.
    """
    unary = np.asarray(unary, np.float64)
    times = np.asarray(times, np.float64)
    n, k = unary.shape
    back = np.zeros((n, k), np.int64)
    cost = unary[0].copy()
    cols = np.arange(k)
    for t in range(1, n):
        jump = np.minimum(np.abs(times[t][None, :] - times[t - 1][:, None]), jump_cap)  # (k_prev, k_cur)
        total = cost[:, None] + jump_weight * jump
        back[t] = total.argmin(axis=0)
        cost = total[back[t], cols] + unary[t]
    path = np.empty(n, np.int64)
    path[-1] = int(cost.argmin())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


# --------------------------------------------------------------------------- the frames shown


class FrameStore:
    """A target's usable frames at one size, read on demand: store[rows] -> (N, S, S, 3) uint8 BGR, store[i] -> one.

    A VideoSkeleton's frames.npy is memory-mapped; the rows asked for are read from its file (VideoSkeleton.read_rows'
    reason: pages touched through the map stay in the process's memory, so a long demo would grow with the target)
    and resized as vs.frames(size) resizes them (bitwise the same frames). A target without a memory-mapped cache
    (test doubles) is held as vs.frames(size).
    """

    def __init__(self, vs, size, positions):
        self.size = int(size)
        stored = getattr(vs, "frames_all", None)
        self.lazy = isinstance(getattr(stored, "base", None), mmap.mmap)
        if self.lazy:
            self.stored = stored  # (N_all, 256, 256, 3) uint8 memmap
            self.cache_rows = np.asarray(vs.rows, np.int64)[positions]  # (M,) rows of frames.npy
        else:
            self.frames = vs.frames(self.size)[positions]  # (M, S, S, 3) uint8, in memory

    def __len__(self):
        return len(self.cache_rows) if self.lazy else len(self.frames)

    def __getitem__(self, rows):
        if not self.lazy:
            return self.frames[rows]
        rows = np.asarray(rows, np.int64)
        if rows.ndim == 0:
            return self._read(rows[None])[0]
        return self._read(rows)

    def _read(self, rows):
        """(N,) positions -> (N, S, S, 3) uint8: each distinct frame read once, in file order."""
        out = np.empty((len(rows), self.size, self.size, 3), np.uint8)
        if len(rows) == 0:
            return out
        wanted, back = np.unique(self.cache_rows[rows], return_inverse=True)
        m = self.stored
        per_frame = int(np.prod(m.shape[1:]))
        with open(m.filename, "rb") as f:
            for j, row in enumerate(wanted):
                f.seek(m.offset + int(row) * per_frame * m.itemsize)
                frame = np.fromfile(f, m.dtype, per_frame)
                if frame.size != per_frame:
                    raise UserError(f"{m.filename} is shorter than its header says: rerun with force_recompute=True")
                frame = frame.reshape(m.shape[1:])
                out[back == j] = frame if frame.shape[0] == self.size else square_frame(frame, self.size)
        return out


# --------------------------------------------------------------------------- the generator


class GenNearest:
    """Returns the target frame whose skeleton is nearest to the query (a lookup, nothing is learnt)."""

    def __init__(
        self,
        vs,
        size=SIZE,
        coherent=COHERENT,
        k=K,
        jump_weight=JUMP_WEIGHT,
        features=FEATURES,
        positions=None,
    ):
        from sklearn.neighbors import NearestNeighbors  # slow to import: only when a generator is built

        if features not in FEATURE_CHOICES:
            raise UserError(f"unknown features {features!r}; expected one of {FEATURE_CHOICES}")
        if k < 1:
            raise UserError(f"k must be >= 1, got {k}")
        self.positions = np.arange(len(vs)) if positions is None else np.asarray(positions, np.int64)
        if len(self.positions) == 0:
            raise UserError(f"{vs} has no frame with a person to copy from")
        self.size, self.coherent, self.features = int(size), bool(coherent), features
        self.k, self.jump_weight = min(int(k), len(self.positions)), float(jump_weight)
        self.xy = vs.skeletons()[self.positions]  # (M, 13, 2) in [0, 1]
        self.images = FrameStore(vs, self.size, self.positions)  # images[rows] -> (N, S, S, 3) uint8 BGR
        self.times = np.asarray(vs.rows, np.float64)[self.positions] / float(vs.fps)  # (M,) s into the target video
        self.height = float(np.median(body_height(self.xy)))
        self.index = NearestNeighbors(algorithm="kd_tree").fit(self._features(self.xy))

    def _features(self, xy):
        return pose_features(xy, self.features, self.height)

    def match(self, xy, coherent=None):
        """Rows of the target frames shown for poses (N,13,2) in [0,1]: (N,) int64 into self.images."""
        xy = np.asarray(xy, np.float32).reshape(-1, 13, 2)
        if not np.all(np.isfinite(xy)):
            raise ValueError("query poses contain NaN: fill the missing poses first (DanceDemo.fill_missing)")
        coherent = self.coherent if coherent is None else coherent
        if len(xy) == 0:
            return np.zeros(0, np.int64)
        if not coherent or len(xy) == 1 or self.k == 1:
            return self.candidates(xy, 1)[:, 0]
        dist, rows = self.index.kneighbors(self._features(xy), n_neighbors=self.k)
        scale = max(float(np.median(dist[:, 0])), 1e-6)
        path = viterbi(dist / scale, self.times[rows], self.jump_weight)
        return rows[np.arange(len(rows)), path]

    def candidates(self, xy, k):
        """The k stored frames nearest each pose, nearest first: (N,13,2) poses (no NaN) -> (N, k) int64 rows."""
        k = min(int(k), len(self.positions))
        return self.index.kneighbors(self._features(np.asarray(xy, np.float32).reshape(-1, 13, 2)), n_neighbors=k,
                                     return_distance=False)  # fmt: skip

    def generate_batch(self, xy):
        """(N,13,2) float32 poses in [0,1] -> (N,S,S,3) uint8 BGR; coherent mode reads the batch as one clip."""
        return self.images[self.match(xy)]

    def generate_clip(self, xy, batch=RENDER_BATCH):
        """A whole clip's (N,13,2) poses -> its frames, yielded `batch` at a time ((b,S,S,3) uint8 BGR): coherent mode
        matches the whole clip at once (cheap: rows), then the frames are read a batch at a time, so a long source at
        the panel's 256 px never sits in memory whole (~3.5 GB for 10 min at 30 fps)."""
        rows = self.match(xy)
        for i in range(0, len(rows), batch):
            yield self.images[rows[i : i + batch]]

    def generate(self, ske):
        """One Skeleton -> (S,S,3) uint8 BGR: the nearest target frame."""
        return self.images[self.match(ske.xy[None], coherent=False)[0]]

    def __repr__(self):
        mode = f"coherent k={self.k} jump_weight={self.jump_weight:g}" if self.coherent else "plain"
        return f"GenNearest({len(self.positions)} frames, {self.features} features, {mode}, {self.size}px)"


def load_generator(vs, gen_type=1, *, size=SIZE, device="auto", **options):
    """The project-wide loader: a ready GenNearest (nothing to train; device is unused, it runs on CPU)."""
    if gen_type != 1:
        raise UserError(f"GenNearest provides gen_type 1 only, not {gen_type}")
    return GenNearest(vs, size=size, **options)


# --------------------------------------------------------------------------- measures


def jitter(rows, images, times=None):
    """Flicker of a generated clip: mean |jump| between consecutive picks and mean |frame difference|.

    rows (N,) picks, images (N,S,S,3) uint8 the frames shown; times (M,) target times of the rows, if any.
    Returns {"frame_diff": mean |frame-to-frame difference| (pixels in [0, 1], Metrics.temporal_diff), "jump_s":
    mean |jump| in target seconds (only with times; times target fps = target frames)}.
    """
    out = {"frame_diff": temporal_diff(images) if len(images) > 1 else 0.0}
    if times is not None and len(rows) > 1:
        t = np.asarray(times)[rows]
        out["jump_s"] = float(np.abs(np.diff(t)).mean())
    return out


def self_retrieval(vs, size=SIZE, k=K, jump_weight=JUMP_WEIGHT, features=FEATURES):
    """Match the target's selection block against its training frames, plain and coherent: a dict per mode. The
    options are tuned here (a tuning tool), so Evaluate's test block stays unseen by the choice."""
    blocks = vs.split()
    if len(blocks.train) == 0 or len(blocks.select) < 2:
        raise UserError(f"{vs} is too short for a selection block ({len(vs)} frames)")
    gen = GenNearest(vs, size, k=k, jump_weight=jump_weight, features=features, positions=blocks.train)
    query = vs.skeletons()[blocks.select]
    truth = vs.frames(size)[blocks.select]
    frame_s = 1.0 / vs.fps
    out = {}
    for mode in ("plain", "coherent"):
        rows = gen.match(query, coherent=mode == "coherent")
        shown = gen.images[rows]
        j = jitter(rows, shown, gen.times)
        out[mode] = {
            "pose_error": pose_error(query, gen.xy[rows]),
            "image_l1": float(np.abs(shown.astype(np.int16) - truth.astype(np.int16)).mean()),
            "jump_frames": j["jump_s"] / frame_s,
            "frame_diff": j["frame_diff"],
            "rows": rows,
        }
    return gen, query, truth, out


def write_preview(path, gen, query, truth, rows, n=8, size=128):
    """PNG: for n queries, the query skeleton over the nearest frame found, and the true frame below."""
    picks = np.linspace(0, len(query) - 1, n).round().astype(int)
    found = [cv2.resize(gen.images[rows[i]], (size, size)) for i in picks]
    found = [Skeleton(query[i]).draw(f) for i, f in zip(picks, found, strict=True)]
    true = [cv2.resize(truth[i], (size, size)) for i in picks]
    maps = render_maps(query[picks], size)
    grid = np.concatenate([np.concatenate(row, axis=1) for row in (list(maps), found, true)], axis=0)
    write_png(path, grid)


# --------------------------------------------------------------------------- CLI
