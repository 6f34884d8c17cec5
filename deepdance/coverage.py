"""Which poses a target clip covers, and which source poses it never made.

A generator can only render poses close to ones it saw. Poses are compared by the directions of their limbs
(upper arms, forearms, thighs, shins, torso, head), which neither the person's proportions nor their place or size
in the picture change; a few named kinds of pose (arms above the head, a squat, a lifted knee...) turn "far from
every target pose" into what to film.

    pose_kinds(xy)                  named kinds of pose -> (N,) bool, for any (N,13,2) joints
    coverage_summary(xy)               what the target report says about a target's poses
    uncovered(source_xy, target_xy)    source frames far from every target pose, and what the target never did
"""

from dataclasses import dataclass, field

from deepdance.skeleton import (
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NOSE,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    body_height,
)

import numpy as np

NECK, PELVIS = -1, -2  # pseudo-joints: mid-shoulders, mid-hips
# Limbs compared, as (from, to) joints: each one's direction in the picture describes the pose.
DIRECTION_LIMBS = (
    (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST),
    (L_HIP, L_KNEE), (L_KNEE, L_ANKLE), (R_HIP, R_KNEE), (R_KNEE, R_ANKLE),
    (PELVIS, NECK), (NECK, NOSE),
)  # fmt: skip
FAR_DEG = 30.0  # RMS limb-direction difference (degrees) beyond which a pose is "far" from another: about one limb
# turned right round, or every limb 30 degrees off; a nearest-neighbour frame that far looks like another pose
MIN_SHARE = 0.01  # a kind of pose in fewer than this share of the target's frames (and < MIN_FRAMES) was "never" done
MIN_FRAMES = 3
FEW_POSES_DEG = 12.0  # median distance (degrees) of a target's poses from its median pose below this: barely moves


# --------------------------------------------------------------------------- geometry


def _points(xy):
    """(N,13,2) joints -> (N,15,2) with the neck and pelvis appended (indices NECK = -1, PELVIS = -2)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 13, 2)
    neck = 0.5 * (xy[:, L_SHOULDER] + xy[:, R_SHOULDER])
    pelvis = 0.5 * (xy[:, L_HIP] + xy[:, R_HIP])
    return np.concatenate([xy, pelvis[:, None], neck[:, None]], axis=1)


def limb_directions(xy):
    """Unit direction of every limb in DIRECTION_LIMBS: (N,13,2) joints (y down) -> (N, len(DIRECTION_LIMBS), 2);
    NaN for NaN poses."""
    p = _points(xy)
    a = np.array([lim[0] for lim in DIRECTION_LIMBS])
    b = np.array([lim[1] for lim in DIRECTION_LIMBS])
    v = p[:, b] - p[:, a]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


def _to_angle(chord_rms):
    """RMS chord length between unit vectors -> the angle (degrees) that gives it for every limb."""
    return np.degrees(2.0 * np.arcsin(np.clip(chord_rms / 2.0, 0.0, 1.0)))


def nearest_distance(query_xy, ref_xy, chunk=2048):
    """For each query pose, the RMS limb-direction difference (degrees) to the closest reference pose, and which:
    (Nq,) float64 (NaN for a NaN query), (Nq,) int64 (-1 for a NaN query). ref_xy must hold finite poses."""
    q = limb_directions(query_xy).reshape(-1, 2 * len(DIRECTION_LIMBS))
    r = limb_directions(ref_xy).reshape(-1, 2 * len(DIRECTION_LIMBS))
    r = r[np.isfinite(r).all(axis=1)]
    dist, which = np.full(len(q), np.nan), np.full(len(q), -1, np.int64)
    ok = np.flatnonzero(np.isfinite(q).all(axis=1))
    if len(r) == 0:
        return dist, which
    rr = (r * r).sum(axis=1)
    for a in range(0, len(ok), chunk):  # chunked: (chunk, M) distances at a time, bounded memory
        rows = ok[a : a + chunk]
        d2 = (q[rows] * q[rows]).sum(axis=1)[:, None] + rr[None, :] - 2.0 * q[rows] @ r.T
        k = np.argmin(d2, axis=1)
        dist[rows] = _to_angle(np.sqrt(np.maximum(d2[np.arange(len(rows)), k], 0.0) / len(DIRECTION_LIMBS)))
        which[rows] = k
    return dist, which


def _angle_from_down(v):
    """Angle (degrees) of vectors (...,2) (y down) from straight down: 0 hanging, 90 sideways, 180 straight up."""
    return np.degrees(np.arctan2(np.abs(v[..., 0]), v[..., 1]))


def _interior_angle(a, b, c):
    """Angle (degrees) at b between b->a and b->c, for (...,2) points."""
    u, w = a - b, c - b
    cos = (u * w).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1), 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# --------------------------------------------------------------------------- kinds of pose

# name -> how a sentence says it ("the target never <did this>"); the tests in pose_kinds.
FEATURES = {
    "both_arms_up": "raised both arms above the head",
    "arm_up": "raised an arm above the head",
    "arm_out": "stretched an arm out sideways at shoulder height",
    "elbow_bent": "bent an elbow sharply with the arm raised",
    "arm_across": "reached an arm across the body",
    "squat": "bent both knees deeply (a squat)",
    "knee_lift": "lifted a knee",
    "leg_out": "raised or stretched a leg out sideways",
    "wide_stance": "stood with the feet wide apart",
    "side_bend": "leaned or bent the upper body sideways",
}


def pose_kinds(xy):
    """Named kinds of pose: {name: (N,) bool} for (N,13,2) joints in any image coordinates (y down); False for NaN."""
    xy = np.asarray(xy, np.float64).reshape(-1, 13, 2)
    h = np.maximum(body_height(xy).astype(np.float64), 1e-9)
    p = _points(xy)
    y = p[..., 1]
    up = {}
    for side, (sh, el, wr) in (("l", (L_SHOULDER, L_ELBOW, L_WRIST)), ("r", (R_SHOULDER, R_ELBOW, R_WRIST))):
        # "above the head": the wrist clearly higher than the nose
        up[side] = y[:, wr] < y[:, NOSE] - 0.05 * h
        up[side + "_elev"] = _angle_from_down(p[:, el] - p[:, sh])  # upper arm: 0 hanging, 90 out, 180 up
        up[side + "_out"] = (np.abs(p[:, wr, 0] - p[:, sh, 0]) > 0.32 * h) & (np.abs(y[:, wr] - y[:, sh]) < 0.15 * h)
        up[side + "_elbow"] = (_interior_angle(p[:, sh], p[:, el], p[:, wr]) < 100) & (up[side + "_elev"] > 60)
    facing = np.sign(p[:, L_SHOULDER, 0] - p[:, R_SHOULDER, 0])  # +1: facing the camera (their left on image right)
    knee_l = _interior_angle(p[:, L_HIP], p[:, L_KNEE], p[:, L_ANKLE])
    knee_r = _interior_angle(p[:, R_HIP], p[:, R_KNEE], p[:, R_ANKLE])
    torso = p[:, NECK] - p[:, PELVIS]
    thigh_l, thigh_r = (np.linalg.norm(p[:, k] - p[:, hp], axis=-1) for hp, k in ((L_HIP, L_KNEE), (R_HIP, R_KNEE)))
    shin_l, shin_r = (np.linalg.norm(p[:, a] - p[:, k], axis=-1) for k, a in ((L_KNEE, L_ANKLE), (R_KNEE, R_ANKLE)))
    leg_l, leg_r = (_angle_from_down(p[:, a] - p[:, hp]) for hp, a in ((L_HIP, L_ANKLE), (R_HIP, R_ANKLE)))
    feats = {
        "both_arms_up": up["l"] & up["r"],
        "arm_up": up["l"] | up["r"],
        "arm_out": up["l_out"] | up["r_out"],
        "elbow_bent": up["l_elbow"] | up["r_elbow"],
        # a wrist past the body's midline, on the other side (facing tells which side is whose in the picture)
        "arm_across": ((p[:, L_WRIST, 0] - p[:, PELVIS, 0]) * facing < -0.05 * h)
        | ((p[:, R_WRIST, 0] - p[:, PELVIS, 0]) * facing > 0.05 * h),
        # knees bent in the picture, or both thighs pointing at the camera (a squat filmed from the front)
        "squat": ((knee_l < 135) & (knee_r < 135)) | ((thigh_l < 0.75 * shin_l) & (thigh_r < 0.75 * shin_r)),
        "knee_lift": np.abs(y[:, L_KNEE] - y[:, R_KNEE]) > 0.1 * h,
        "leg_out": np.maximum(leg_l, leg_r) > 25,  # a whole leg more than 25 degrees from hanging straight down
        "wide_stance": np.abs(p[:, L_ANKLE, 0] - p[:, R_ANKLE, 0]) > 0.42 * h,
        "side_bend": _angle_from_down(-torso) > 12,  # the torso's axis more than 12 degrees from upright
    }
    finite = np.isfinite(xy).all(axis=(1, 2))
    return {k: v & finite for k, v in feats.items()}


def pose_spread(xy):
    """How much a clip's poses vary: the median RMS limb-direction difference (degrees) from its medoid-like median
    pose (the per-limb median direction). NaN poses are ignored; NaN if there are none."""
    d = limb_directions(xy)
    d = d[np.isfinite(d).all(axis=(1, 2))]
    if not len(d):
        return float("nan")
    med = np.median(d, axis=0)
    med /= np.maximum(np.linalg.norm(med, axis=-1, keepdims=True), 1e-9)
    chord = np.sqrt(((d - med[None]) ** 2).sum(axis=(1, 2)) / len(DIRECTION_LIMBS))
    return float(np.median(_to_angle(chord)))


def arm_leg_histograms(xy, bins=(0, 30, 60, 90, 120, 150, 181)):
    """Share of frames per elevation bin (degrees from hanging down) of each upper arm and thigh:
    {"left_arm": [...], ...}, each a list of len(bins) - 1 shares summing to 1 (over finite poses)."""
    p = _points(xy)
    p = p[np.isfinite(p).all(axis=(1, 2))]
    out = {}
    for name, a, b in (("left_arm", L_SHOULDER, L_ELBOW), ("right_arm", R_SHOULDER, R_ELBOW),
                       ("left_leg", L_HIP, L_KNEE), ("right_leg", R_HIP, R_KNEE)):  # fmt: skip
        counts = np.histogram(_angle_from_down(p[:, b] - p[:, a]), bins=bins)[0] if len(p) else np.zeros(len(bins) - 1)
        out[name] = [round(float(c) / max(len(p), 1), 4) for c in counts]
    return out


def _done(share, count):
    return share >= MIN_SHARE or count >= max(MIN_FRAMES, 1)


def coverage_summary(xy):
    """What a target's poses cover: {"features": {name: share}, "never": [names], "spread_deg", "histograms",
    "few_poses": bool}. xy: (N,13,2) joints, NaN rows ignored."""
    xy = np.asarray(xy, np.float64).reshape(-1, 13, 2)
    finite = np.isfinite(xy).all(axis=(1, 2))
    n = max(int(finite.sum()), 1)
    feats = pose_kinds(xy)
    shares = {k: round(float(v.sum()) / n, 4) for k, v in feats.items()}
    never = [k for k, v in feats.items() if not _done(v.sum() / n, int(v.sum()))]
    spread = pose_spread(xy)
    return {
        "features": shares,
        "never": never,
        "spread_deg": round(spread, 2) if np.isfinite(spread) else None,
        "few_poses": bool(np.isfinite(spread) and spread < FEW_POSES_DEG),
        "histograms": arm_leg_histograms(xy),
    }


# --------------------------------------------------------------------------- source vs target


def _runs(positions):
    """Sorted int positions -> [(first, last)] runs of consecutive values."""
    positions = np.asarray(positions, np.int64)
    if not len(positions):
        return []
    cuts = np.flatnonzero(np.diff(positions) > 1) + 1
    return [(int(r[0]), int(r[-1])) for r in np.split(positions, cuts)]


def describe_runs(positions, limit=4):
    """'12-30, 41, 77-90 and 2 more' for sorted frame positions."""
    runs = _runs(positions)
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return text + (f" and {len(runs) - limit} more" if len(runs) > limit else "")


@dataclass
class Uncovered:
    """Source frames whose pose is far from every target pose, and what the target never did.

    distance: (N,) degrees from each source pose to the nearest target pose (NaN where the source has none);
    nearest: (N,) the nearest target pose's index (-1 where none); far: (N,) bool; never: [(feature name, its
    sentence, (K,) source positions showing it among the far frames)].
    """

    distance: np.ndarray
    nearest: np.ndarray
    far: np.ndarray
    threshold_deg: float
    never: list = field(default_factory=list)

    @property
    def share(self):
        """Share of the source's frames with a pose that are far from every target pose."""
        n = int(np.isfinite(self.distance).sum())
        return float(self.far.sum()) / n if n else 0.0

    def lines(self, *, unit="source frames", offset=0):
        """Plain lines for a user, empty if every source pose is close to one of the target's."""
        if not self.far.any():
            return []
        far = np.flatnonzero(self.far) + offset
        out = [
            f"{len(far)} {unit} ({100 * self.share:.0f}%) have poses far from every pose of the target "
            f"({describe_runs(far)}): they will be rendered as the nearest pose the target made"
        ]
        for _, sentence, pos in self.never:
            out.append(f"the target never {sentence} ({unit} {describe_runs(np.asarray(pos) + offset)})")
        return out


def uncovered(source_xy, target_xy, *, far_deg=FAR_DEG):
    """Compare a source's poses with a target's: which source frames are far from every target pose, and which
    kinds of pose (FEATURES) appear in them but (almost) never in the target.

    A source frame is far when its limbs' directions differ from the closest target pose's by more than far_deg
    (RMS over the limbs), or when it shows a kind of pose the target never made (one raised arm moves too few limbs
    to stand out in the RMS, yet the generator has never seen it). source_xy: (N,13,2) joints, NaN where the
    source has no person; target_xy: (M,13,2) (NaN rows ignored); any image coordinates with square pixels (both
    are compared by limb directions). Returns an Uncovered.
    """
    src = np.asarray(source_xy, np.float64).reshape(-1, 13, 2)
    tgt = np.asarray(target_xy, np.float64).reshape(-1, 13, 2)
    tgt = tgt[np.isfinite(tgt).all(axis=(1, 2))]
    dist, nearest = nearest_distance(src, tgt)
    present = np.isfinite(src).all(axis=(1, 2))
    far = present & (dist > far_deg) if len(tgt) else present.copy()
    f_src, f_tgt = pose_kinds(src), pose_kinds(tgt)
    never = []
    for name, sentence in FEATURES.items():
        if _done(f_tgt[name].sum() / max(len(tgt), 1), int(f_tgt[name].sum())):
            continue
        pos = np.flatnonzero(f_src[name])
        if len(pos):
            never.append((name, sentence, pos))
            far[pos] = True
    # "both arms up" says it all: drop "an arm up" when both are reported for the same frames
    names = [n for n, _, _ in never]
    if "both_arms_up" in names and "arm_up" in names:
        both = set(never[names.index("both_arms_up")][2].tolist())
        never = [e for e in never if e[0] != "arm_up" or not set(e[2].tolist()) <= both]
    return Uncovered(distance=dist, nearest=nearest, far=far, threshold_deg=far_deg, never=never)
