"""DeepDance's built-in sample footage: a shaded, clothed mannequin rendered from a 13-joint skeleton.

Two deterministic clips: "target" (mannequin A running through a varied routine the models train on) and
"source" (mannequin B: other proportions, clothes and placement, dancing moves within the target's range).
The ground-truth joints follow MediaPipe Pose's semantics, in pixels of the 320x256 frame.
"""

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from deepdance.cli import UserError
from deepdance.files import DATA_DIR, atomic_path, check_writable, lock_file
from deepdance.raster import AMBIENT, LIGHT, _blend, _box, _capsule, _ellipse, _soft_shadow
from deepdance.skeleton import JOINT_NAMES, N_JOINTS
from deepdance.video import VideoWriter

import cv2
import numpy as np

SAMPLE_DIR = DATA_DIR / "sample"
FRAME_W, FRAME_H, FPS = 320, 256, 25
CLIPS = ("target", "source")
N_FRAMES = {"target": 600, "source": 400}
SEEDS = {"target": 1, "source": 2}
CRF = 18
HORIZON_Y = 150  # px: where the wall meets the floor
BELT = (50, 36, 28)  # RGB

# Face layout in head-local body heights (y down from the head's centre); the nose joint is the nose tip.
EYE_Y, NOSE_Y, MOUTH_Y = -0.012, 0.009, 0.029

NOSE, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, L_HIP, R_HIP, L_KN, R_KN, L_AN, R_AN = range(N_JOINTS)


# --------------------------------------------------------------------------- the two mannequins


@dataclass(frozen=True)
class Figure:
    """One mannequin: placement (px), proportions (fractions of its height), clothes (RGB)."""

    height: float  # px, sole to top of head
    cx: float  # px, x of the pelvis when standing at rest
    floor_y: float  # px, y where the soles rest
    wall: tuple  # RGB of the room's wall (each clip is "another video")
    floor: tuple
    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    shoes: tuple
    long_sleeves: bool = False
    shoulder: float = 0.105  # half the distance between the shoulder joints
    hip: float = 0.058  # half the distance between the hip joints (inside the torso's outline, as MediaPipe's)
    torso: float = 0.30  # hip line to shoulder line
    upper_arm: float = 0.175
    forearm: float = 0.15
    hand: float = 0.095
    thigh: float = 0.245
    shin: float = 0.232
    ankle: float = 0.055  # ankle joint above the sole: just above the shoe
    girth: float = 1.0  # scales every limb's and the torso's width


FIGURES = {
    "target": Figure(
        height=184.0, cx=160.0, floor_y=240.0, wall=(222, 211, 190), floor=(150, 116, 84),
        skin=(226, 176, 142), hair=(74, 46, 30), shirt=(196, 48, 44), trousers=(46, 62, 112), shoes=(38, 34, 32),
    ),
    "source": Figure(
        height=150.0, cx=140.0, floor_y=226.0, wall=(196, 208, 214), floor=(118, 112, 104),
        skin=(168, 116, 84), hair=(28, 22, 22), shirt=(40, 142, 92), trousers=(64, 64, 74), shoes=(232, 232, 228),
        long_sleeves=True, shoulder=0.1, hip=0.055, torso=0.29, upper_arm=0.19, forearm=0.165, hand=0.1,
        thigh=0.26, shin=0.24, girth=0.9,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------- motion: moves and routines

# Pose parameters. x in body heights; angles in degrees. Arm/leg angles are abductions: 0 = hanging down,
# 90 = straight out sideways, 180 = straight up; elbow/knee add to the limb's angle (negative = inwards);
# lift tilts the thigh toward the camera (its projected length shrinks by cos(lift)).
PARAMS = ("x", "lean", "head", "l_arm", "l_elbow", "r_arm", "r_elbow", "l_leg", "l_knee", "r_leg", "r_knee",
          "l_lift", "r_lift")  # fmt: skip
P = {name: i for i, name in enumerate(PARAMS)}
NEUTRAL = dict(x=0.0, lean=0.0, head=0.0, l_arm=10.0, l_elbow=8.0, r_arm=10.0, r_elbow=8.0, l_leg=4.0, l_knee=0.0,
               r_leg=4.0, r_knee=0.0, l_lift=0.0, r_lift=0.0)  # fmt: skip


def _upper_move(name, rng):
    """Arm/torso part of a move, for the person's left side: (absolute targets, oscillations)."""
    u = rng.uniform
    if name == "none":
        return {}, []
    if name == "raise_both":
        return dict(l_arm=u(115, 160), l_elbow=u(0, 25), r_arm=u(115, 160), r_elbow=u(0, 25)), []
    if name == "raise_one":
        return dict(l_arm=u(140, 168), l_elbow=u(0, 20), r_arm=u(15, 35), head=u(-6, 0)), []
    if name == "wave":
        return dict(l_arm=u(95, 118), l_elbow=u(45, 65), head=u(0, 6)), [("l_elbow", u(18, 24), u(9, 12))]
    if name == "reach":
        return dict(l_arm=u(80, 100), l_elbow=u(0, 10), r_arm=u(20, 40), r_elbow=20, lean=u(6, 12), x=u(0.02, 0.04)), []
    if name == "muscle":
        return dict(l_arm=u(80, 100), l_elbow=u(75, 100), r_arm=u(80, 100), r_elbow=u(75, 100)), []
    if name == "hips":
        return dict(l_arm=u(36, 44), l_elbow=u(-85, -72), r_arm=u(36, 44), r_elbow=u(-85, -72)), []
    if name == "cross":
        return dict(l_arm=u(20, 30), l_elbow=u(-110, -95), r_arm=u(12, 20)), []
    if name == "swing":
        return dict(l_arm=u(35, 45), r_arm=u(35, 45), l_elbow=u(15, 30), r_elbow=u(15, 30)), [
            ("l_arm", 30.0, 20.0), ("r_arm", -30.0, 20.0)]  # fmt: skip
    if name == "side_bend":
        return dict(lean=u(-18, -12), l_arm=u(140, 160), l_elbow=u(25, 40), r_arm=u(12, 25), head=u(2, 6)), []
    raise ValueError(name)


def _lower_move(name, rng):
    """Leg/root part of a move, for the person's left side: (absolute targets, oscillations)."""
    u = rng.uniform
    if name == "stand":
        return {}, []
    if name == "squat":
        spread = u(12, 18)
        return dict(l_lift=u(45, 60), r_lift=u(45, 60), l_leg=spread, r_leg=spread, l_knee=spread, r_knee=spread), []
    if name == "step":
        return dict(x=u(0.06, 0.1), l_leg=u(12, 16), r_leg=u(8, 12)), []
    if name == "leg_side":
        return dict(l_leg=u(28, 40), l_knee=u(0, 8), r_leg=2.0, lean=u(-9, -5)), []
    if name == "knee_raise":
        return dict(l_lift=u(45, 62), l_leg=6.0, l_knee=6.0), []
    if name == "lunge":
        bend = u(22, 30)
        return dict(l_leg=bend, l_knee=bend + 4, l_lift=u(15, 25), r_leg=u(12, 18), x=u(0.04, 0.07)), []
    if name == "bounce":
        return dict(l_lift=12.0, r_lift=12.0, l_leg=8.0, r_leg=8.0, l_knee=6.0, r_knee=6.0), [
            ("l_lift", 12.0, 12.5), ("r_lift", 12.0, 12.5)]  # fmt: skip
    raise ValueError(name)


# (upper move, its side, lower move, its side); side +1 = the person's left, -1 = mirrored. Slots 0-13 show every
# move (the one-sided ones on both sides, but "cross"); the held-out last 15% of the target clip (from frame 510:
# the end of slot 13 and slots 14-16) re-runs combinations seen before, with other amplitudes.
TARGET_ROUTINE = (
    ("raise_both", 1, "stand", 1), ("wave", 1, "stand", 1), ("none", 1, "squat", 1),
    ("raise_one", -1, "leg_side", 1), ("reach", 1, "step", 1), ("cross", -1, "knee_raise", 1),
    ("muscle", 1, "stand", 1), ("side_bend", 1, "lunge", -1), ("hips", 1, "knee_raise", -1),
    ("wave", -1, "step", -1), ("raise_one", 1, "bounce", 1), ("reach", -1, "leg_side", -1),
    ("side_bend", -1, "squat", 1), ("swing", 1, "lunge", 1),
    ("wave", 1, "squat", 1), ("raise_one", -1, "leg_side", 1), ("reach", 1, "step", 1),
)  # fmt: skip
# The source dance draws its moves from these (repeats weight the dancier moves), all within the target's range.
SOURCE_UPPER = ("raise_both", "raise_one", "wave", "reach", "muscle", "hips", "swing", "side_bend", "swing", "wave")
SOURCE_LOWER = ("bounce", "step", "squat", "leg_side", "knee_raise", "lunge", "bounce", "stand")


def _mirror(targets):
    """The same move done with the other side: swap l_/r_, negate x, lean and head."""
    out = {}
    for k, v in targets.items():
        if k in ("x", "lean", "head"):
            out[k] = -v
        elif k.startswith("l_"):
            out["r_" + k[2:]] = v
        elif k.startswith("r_"):
            out["l_" + k[2:]] = v
    return out


def _delta(targets, side):
    """(len(PARAMS),) offsets from NEUTRAL for absolute targets of a move done on `side`."""
    targets = targets if side > 0 else _mirror(targets)
    d = np.zeros(len(PARAMS))
    for k, v in targets.items():
        d[P[k]] += v - NEUTRAL[k]
    return d


def _osc_params(osc, side):
    """Oscillations [(param, amp, period)] mirrored to `side`."""
    if side > 0:
        return osc
    return [(("r_" + k[2:]) if k.startswith("l_") else ("l_" + k[2:]), a, p) for k, a, p in osc]


def _ease(s):
    """Smoothstep in [0, 1]: zero velocity at both ends, so moves start and stop softly."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def routine(which):
    """A clip's motion, deterministic: pose parameters (N, len(PARAMS)) float64, and the moves as
    [(start frame, upper move, its side, lower move, its side)]."""
    n = N_FRAMES[which]
    rng = np.random.default_rng(SEEDS[which])
    if which == "target":
        slots = list(TARGET_ROUTINE)
    else:
        slots = []
        while len(slots) < 30:  # more than enough; cut to n frames below
            slots.append((rng.choice(SOURCE_UPPER), int(rng.choice([-1, 1])), rng.choice(SOURCE_LOWER),
                          int(rng.choice([-1, 1]))))  # fmt: skip
    neutral = np.array([NEUTRAL[k] for k in PARAMS])
    out = np.tile(neutral, (n, 1))
    f0, schedule = 0, []
    for upper, su, lower, sl in slots:
        if f0 >= n:
            break
        schedule.append((f0, str(upper), su, str(lower), sl))
        tu, ou = _upper_move(upper, rng)
        tl, ol = _lower_move(lower, rng)
        delta = _delta(tu, su) + _delta(tl, sl)
        osc = _osc_params(ou, su) + _osc_params(ol, sl)
        n_in, n_hold, n_out = int(rng.integers(12, 16)), int(rng.integers(5, 10)), int(rng.integers(12, 16))
        if osc:
            n_hold += 10  # room for a couple of oscillation cycles
        if which == "source":  # the dance is brisker: shorter holds
            n_hold = max(4, n_hold - 4)
        length = n_in + n_hold + n_out
        t = np.arange(length, dtype=np.float64)
        env = _ease(t / n_in) * (1.0 - _ease((t - n_in - n_hold) / n_out))
        seg = env[:, None] * delta[None, :]
        for k, amp, period in osc:
            seg[:, P[k]] += env**2 * amp * np.sin(2 * np.pi * t / period)
        m = min(length, n - f0)
        out[f0 : f0 + m] += seg[:m]
        f0 += length + int(rng.integers(0, 3))
    # Idle life: small incommensurate sways, so no two frames are exactly alike.
    t = np.arange(n, dtype=np.float64) / FPS
    idle = dict(lean=(1.5, 3.1), head=(3.0, 2.3), l_arm=(4.0, 1.7), r_arm=(4.0, 1.9), l_elbow=(4.0, 2.9),
                r_elbow=(4.0, 2.6), l_leg=(1.0, 3.7), r_leg=(1.0, 4.1), x=(0.005, 5.3))  # fmt: skip
    for k, (amp, period) in idle.items():
        out[:, P[k]] += amp * np.sin(2 * np.pi * t / period + P[k])
    if which == "source":  # a dancer's sway and head bob on the beat
        out[:, P["lean"]] += 3.0 * np.sin(2 * np.pi * t / 1.0)
        out[:, P["head"]] += 4.0 * np.sin(2 * np.pi * t / 0.5)
    out[:, P["l_lift"]] = np.clip(out[:, P["l_lift"]], 0.0, 78.0)
    out[:, P["r_lift"]] = np.clip(out[:, P["r_lift"]], 0.0, 78.0)
    return out, schedule


# --------------------------------------------------------------------------- kinematics


def _rot(v, ang):
    """Rotate (...,2) vectors by `ang` radians (clockwise on screen, since y points down)."""
    c, s = np.cos(ang)[..., None], np.sin(ang)[..., None]
    return np.concatenate([c * v[..., :1] - s * v[..., 1:], s * v[..., :1] + c * v[..., 1:]], axis=-1)


def _limb_dir(deg, side):
    """Unit direction (...,2) of a limb with abduction `deg`; side +1 = person's left = image right."""
    a = np.radians(deg)
    return np.stack([side * np.sin(a), np.cos(a)], axis=-1)


def forward_kinematics(params, fig):
    """Pose parameters (N, len(PARAMS)) -> joints (N,13,2) px, head centre (N,2) px, head angle (N,) rad."""
    p = {k: params[:, i] for i, k in enumerate(PARAMS)}
    n = len(params)
    lean = np.radians(p["lean"])
    neck = _rot(np.tile([0.0, -fig.torso], (n, 1)), lean)
    j = np.zeros((n, N_JOINTS, 2))
    for side, sh, el, wr, arm, elbow in ((1, L_SH, L_EL, L_WR, "l_arm", "l_elbow"),
                                         (-1, R_SH, R_EL, R_WR, "r_arm", "r_elbow")):  # fmt: skip
        j[:, sh] = neck + _rot(np.tile([side * fig.shoulder, 0.0], (n, 1)), lean)
        j[:, el] = j[:, sh] + fig.upper_arm * _rot(_limb_dir(p[arm], side), lean)
        j[:, wr] = j[:, el] + fig.forearm * _rot(_limb_dir(p[arm] + p[elbow], side), lean)
    for side, hp, kn, an, leg, knee, lift in ((1, L_HIP, L_KN, L_AN, "l_leg", "l_knee", "l_lift"),
                                               (-1, R_HIP, R_KN, R_AN, "r_leg", "r_knee", "r_lift")):  # fmt: skip
        j[:, hp] = _rot(np.tile([side * fig.hip, 0.0], (n, 1)), 0.25 * lean)  # the pelvis follows the lean a bit
        foreshort = np.cos(np.radians(p[lift]))[:, None]
        j[:, kn] = j[:, hp] + fig.thigh * foreshort * _limb_dir(p[leg], side)
        j[:, an] = j[:, kn] + fig.shin * _limb_dir(p[leg] - p[knee], side)
    head_ang = lean + np.radians(p["head"])
    head_c = neck + _rot(np.tile([0.0, -0.115], (n, 1)), head_ang)
    j[:, NOSE] = head_c + _rot(np.tile([0.0, NOSE_Y], (n, 1)), head_ang)
    # Place in the frame: the lower sole rests on the floor.
    lowest = np.max(j[:, [L_AN, R_AN], 1], axis=1)
    origin = np.stack([fig.cx + fig.height * p["x"], fig.floor_y - fig.height * (lowest + fig.ankle)], axis=-1)
    joints = origin[:, None, :] + fig.height * j
    return joints.astype(np.float32), origin + fig.height * head_c, head_ang


# --------------------------------------------------------------------------- the scene


def background(fig, width=FRAME_W, height=FRAME_H, horizon=None):
    """The room: a softly lit, faintly textured wall above a plank floor. (height, width, 3) float32 RGB.

    horizon: y (px) where the wall meets the floor (default: at the sample's proportion of the height).
    """
    horizon = round(height * HORIZON_Y / FRAME_H) if horizon is None else int(horizon)
    rng = np.random.default_rng(7)
    ys = (np.arange(height, dtype=np.float32)[:, None] + 0.5) / height
    xs = (np.arange(width, dtype=np.float32)[None, :] + 0.5) / width
    light = 1.05 - 0.25 * ((xs - 0.35) ** 2 + 0.6 * (ys - 0.2) ** 2)  # a lamp at the upper left
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 3.0)
    wall = np.asarray(fig.wall, np.float32) * (light * (1.0 + 0.025 * noise) - 0.06 * ys)[..., None]
    img = wall.copy()
    # Floor: darker, with planks converging on a vanishing point above the frame centre.
    fy = np.arange(horizon, height, dtype=np.float32)[:, None] + 0.5
    depth = (fy - horizon) / (height - horizon)  # 0 at the horizon, 1 at the bottom
    fx = np.arange(width, dtype=np.float32)[None, :] + 0.5
    u = (fx - width / 2) / (0.15 + depth)  # plank coordinate: constant along the converging lines
    plank = np.abs(((u / 34.0) % 1.0) - 0.5) * 2.0  # 1 at a seam
    spacing = 34.0 * (0.15 + depth)  # px between seams: fade them out where they would alias
    seam = np.clip((plank - 0.93) * 12.0, 0.0, 1.0) * np.clip((spacing - 8.0) / 10.0, 0.0, 1.0)
    shade = 0.82 + 0.22 * depth - 0.12 * seam + 0.02 * noise[horizon:]
    img[horizon:] = np.asarray(fig.floor, np.float32) * shade[..., None]
    # Skirting board along the horizon.
    img[horizon - 5 : horizon] = np.asarray([236, 234, 228], np.float32) * 0.93
    img[horizon - 1 : horizon] *= 0.8
    return img.astype(np.float32)


def _head(img, c, ang, fig):
    """Head with hair, ears, eyebrows, eyes, nose and mouth, centred at c and tilted by ang (radians)."""
    H = fig.height
    rx, ry = 0.052 * H, 0.066 * H

    def at(lx, ly):
        """Head-local offset (body heights) -> pixel position."""
        return (c[0] + H * (np.cos(ang) * lx - np.sin(ang) * ly), c[1] + H * (np.sin(ang) * lx + np.cos(ang) * ly))

    def below(y0):
        return lambda lx, ly: np.clip(y0 * H - ly + 0.5, 0.0, 1.0)

    skin = np.asarray(fig.skin, np.float32)
    hair = np.asarray(fig.hair, np.float32)
    _ellipse(img, at(0.0, -0.006), rx * 1.1, ry * 1.06, ang, hair, gloss=0.15, clip=below(0.012))  # hair behind
    for s in (-1, 1):
        _ellipse(img, at(s * 0.05, 0.004), 0.011 * H, 0.019 * H, ang, skin * 0.9)  # ears
    _ellipse(img, c, rx, ry, ang, skin)

    # Hairline: lower at the temples, so the fringe frames the face.
    def hairline(lx, ly):
        return np.clip((-0.028 + 0.022 * (lx / rx) ** 2) * H - ly + 0.5, 0.0, 1.0)

    _ellipse(img, at(0.0, -0.003), rx * 1.04, ry * 1.02, ang, hair, gloss=0.2, clip=hairline)
    ey = EYE_Y
    for s in (-1, 1):  # eyebrows, eyes (white + iris), from the person's right (s=-1, image left) to left
        _capsule(img, at(s * 0.010, ey - 0.013), at(s * 0.031, ey - 0.014), 0.0042 * H, 0.0034 * H, hair * 0.8)
        _ellipse(img, at(s * 0.02, ey), 0.0105 * H, 0.0058 * H, ang, (245, 245, 240), flat=True)
        _ellipse(img, at(s * 0.02, ey), 0.0052 * H, 0.0052 * H, ang, (40, 30, 25), flat=True)
    tip = NOSE_Y - 0.002
    _capsule(img, at(0.0, ey + 0.004), at(0.0, tip), 0.0045 * H, 0.0068 * H, skin * 0.97, gloss=0.1)  # nose
    for s in (-1, 1):
        _ellipse(img, at(s * 0.0045, tip + 0.005), 0.0032 * H, 0.0022 * H, ang, skin * 0.45, flat=True)  # nostrils
    my = MOUTH_Y
    _capsule(img, at(-0.014, my - 0.001), at(0.0, my + 0.001), 0.0036 * H, 0.0036 * H, (150, 60, 60))  # a smile
    _capsule(img, at(0.0, my + 0.001), at(0.014, my - 0.001), 0.0036 * H, 0.0036 * H, (150, 60, 60))


def _torso(img, neck, pelvis, fig):
    """Shirt + belt + trousers' seat as one tapered, flattened cylinder from the shoulder line to the crotch."""
    H, g = fig.height, fig.girth
    axis = np.asarray(pelvis, np.float64) - np.asarray(neck, np.float64)
    length = max(np.linalg.norm(axis), 1e-6)
    ax_u = axis / length
    perp = np.array([-ax_u[1], ax_u[0]])  # points to the image left when upright
    ts = np.array([-0.12, 0.0, 0.3, 0.62, 0.82, 1.0, 1.2])  # along the axis, in torso lengths
    ws = np.array([0.085, 0.112, 0.106, 0.086, 0.092, 0.1, 0.1]) * H * g  # half widths
    wmax = ws.max() + 2
    corners = [np.asarray(neck) + ax_u * length * tt + perp * s * wmax for tt in (-0.15, 1.25) for s in (-1, 1)]
    cx = [p[0] for p in corners]
    cy = [p[1] for p in corners]
    box = _box(img, min(cx), min(cy), max(cx), max(cy))
    if box is None:
        return
    sl, xs, ys = box
    wx, wy = xs - neck[0], ys - neck[1]
    along = (wx * ax_u[0] + wy * ax_u[1]) / length
    lat = wx * perp[0] + wy * perp[1]
    w = np.interp(along, ts, ws)
    rel = np.clip(lat / w, -1.0, 1.0)
    top = -0.15 + 0.09 * rel**2  # shoulders slope down from the neck
    bottom = 1.06 + 0.14 * (1.0 - rel**2)  # crotch lower in the middle
    cov = (np.clip(w - np.abs(lat) + 0.5, 0, 1) * np.clip((along - top) * length + 0.5, 0, 1)
           * np.clip((bottom - along) * length + 0.5, 0, 1))  # fmt: skip
    # Flattened cylinder normal: bends only across the width, more at the edges.
    nlat = np.sign(rel) * np.abs(rel) ** 1.5
    nx, ny = nlat * perp[0], nlat * perp[1]
    nz = np.sqrt(np.clip(1.0 - nlat * nlat, 0.0, 1.0))
    belt_lo, belt_hi = 0.84, 0.92
    belt = np.asarray(BELT, np.float32)
    base = np.where((along < belt_lo)[..., None], np.asarray(fig.shirt, np.float32),
                    np.where((along < belt_hi)[..., None], belt, np.asarray(fig.trousers, np.float32)))  # fmt: skip
    lam = np.clip(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0.0, 1.0)
    color = base * (AMBIENT + (1.0 - AMBIENT) * lam)[..., None]
    _blend(img, sl, cov, color)


def _arm(img, sh, el, wr, fig):
    """Upper arm, forearm and hand: a t-shirt shows skin from mid upper arm down, long sleeves reach the wrist."""
    H, g = fig.height, fig.girth
    skin = np.asarray(fig.skin, np.float32)
    sh, el, wr = np.asarray(sh, np.float64), np.asarray(el, np.float64), np.asarray(wr, np.float64)
    if fig.long_sleeves:
        _capsule(img, sh, el, 0.037 * H * g, 0.033 * H * g, fig.shirt)
        _capsule(img, el, wr, 0.033 * H * g, 0.026 * H * g, fig.shirt)
    else:
        _capsule(img, sh, el, 0.033 * H * g, 0.028 * H * g, skin)
        _capsule(img, sh, sh + 0.5 * (el - sh), 0.034 * H * g, 0.036 * H * g, fig.shirt)  # t-shirt sleeve
        _capsule(img, el, wr, 0.029 * H * g, 0.021 * H * g, skin)
    d = wr - el
    d = d / max(np.linalg.norm(d), 1e-6)
    hand_c = wr + d * fig.hand * H * 0.5
    _ellipse(img, hand_c, fig.hand * H * 0.52, 0.026 * H, np.arctan2(d[1], d[0]), skin)


def _leg(img, hip, kn, an, fig):
    """Thigh and shin (trousers) and a shoe under the ankle; a thigh raised toward the camera goes in front."""
    H, g = fig.height, fig.girth
    hip, kn, an = np.asarray(hip, np.float64), np.asarray(kn, np.float64), np.asarray(an, np.float64)
    raised = np.linalg.norm(kn - hip) < 0.9 * fig.thigh * H  # foreshortened: the knee comes toward us
    if not raised:
        _capsule(img, hip, kn, 0.054 * H * g, 0.039 * H * g, fig.trousers)
    _capsule(img, kn, an, 0.039 * H * g, 0.029 * H * g, fig.trousers)
    d = an - kn
    tilt = 0.5 * np.arctan2(-d[0], d[1])  # the shoe follows the shin a little
    _ellipse(img, (an[0], an[1] + 0.029 * H), 0.036 * H, 0.026 * H, tilt, fig.shoes, gloss=0.25)
    if raised:  # thigh over the shin, ending in a rounded, lit kneecap (nearer the camera: a touch wider)
        _capsule(img, hip, kn, 0.054 * H * g, 0.045 * H * g, fig.trousers, gloss=0.06)


def draw_figure(img, fig, joints, head_c, head_ang):
    """Draw one mannequin onto img (H,W,3) float32 RGB, in place: joints (13,2) px, head centre (2,) px."""
    H = fig.height
    j = joints.astype(np.float64)
    feet_x = 0.5 * (j[L_AN, 0] + j[R_AN, 0])
    spread = abs(j[L_AN, 0] - j[R_AN, 0])
    # Contact shadow, nudged right because the light comes from the upper left.
    _soft_shadow(img, (feet_x + 0.03 * H, fig.floor_y + 0.004 * H), 0.5 * spread + 0.12 * H, 0.035 * H, 0.45)
    neck = 0.5 * (j[L_SH] + j[R_SH])
    pelvis = 0.5 * (j[L_HIP] + j[R_HIP])
    _leg(img, j[R_HIP], j[R_KN], j[R_AN], fig)
    _leg(img, j[L_HIP], j[L_KN], j[L_AN], fig)
    _torso(img, neck, pelvis, fig)
    _capsule(img, neck, head_c, 0.033 * H, 0.03 * H, np.asarray(fig.skin, np.float32) * 0.92)  # neck
    _head(img, head_c, head_ang, fig)
    _arm(img, j[R_SH], j[R_EL], j[R_WR], fig)
    _arm(img, j[L_SH], j[L_EL], j[L_WR], fig)
    return img


def to_bgr8(img):
    """A finished float32 RGB picture -> uint8 BGR, rounded (img is changed in place)."""
    np.clip(img, 0.0, 254.5, out=img)
    img += 0.5  # round, not truncate
    return img[..., ::-1].astype(np.uint8)


def render_frame(bg, fig, joints, head_c, head_ang):
    """One frame: background (H,W,3) float32 RGB, joints (13,2) px -> (H, W, 3) uint8 BGR."""
    return to_bgr8(draw_figure(bg.copy(), fig, joints, head_c, head_ang))


# --------------------------------------------------------------------------- clips and files


def _frames(which, index=None):
    """Ground-truth joints (N,13,2) float32 px of a clip's frames `index` (default all), and a generator of the
    frames themselves, so a whole clip can be streamed to a file without holding it in memory."""
    if which not in CLIPS:
        raise UserError(f"unknown sample clip {which!r}; expected one of {', '.join(CLIPS)}")
    fig = FIGURES[which]
    joints, head_c, head_ang = forward_kinematics(routine(which)[0], fig)
    index = np.arange(len(joints)) if index is None else np.asarray(index, dtype=int).reshape(-1)
    bg = background(fig)
    return joints[index], (render_frame(bg, fig, joints[i], head_c[i], head_ang[i]) for i in index)


def render_clip(which, index=None):
    """Render a clip (or only its frames `index`): frames (N, FRAME_H, FRAME_W, 3) uint8 BGR and
    joints (N,13,2) float32 px of the FRAME_W x FRAME_H frame, in Skeleton.JOINT_NAMES order."""
    joints, gen = _frames(which, index)
    frames = np.empty((len(joints), FRAME_H, FRAME_W, 3), np.uint8)
    for i, frame in enumerate(gen):
        frames[i] = frame
    return frames, joints


def clip_path(which):
    """Path of a clip's video."""
    return SAMPLE_DIR / f"{which}.mp4"


def joints_path(which):
    """Path of a clip's ground-truth joints, (N,13,2) float32 px."""
    return SAMPLE_DIR / f"{which}_joints.npy"


def ensure_sample(which="target", force=False):
    """Render `which` to SAMPLE_DIR/{which}.mp4 (+ {which}_joints.npy) unless both exist whole; return the mp4's path.

    One render per clip: a second thread or process waits for the first and reuses its files. A clip found damaged
    (it does not decode to its N_FRAMES frames) is rendered again with a note: it is ours, never the user's fault.
    """
    video = clip_path(which)
    check_writable(SAMPLE_DIR, what="the built-in sample")
    with lock_file(SAMPLE_DIR / f".{which}.lock"):
        problem = None if force else _sample_problem(which)
        if problem is None and not force:
            return video
        if problem != "missing":
            print(f"note: the built-in sample {video.name} {problem}: rendering it again", file=sys.stderr)
        _render_sample(which)
    return video


def _sample_problem(which):
    """Why the rendered sample clip cannot be used ("missing", "is damaged ..."), or None when it is whole."""
    video = clip_path(which)
    if not video.exists() or not joints_path(which).exists():
        return "missing"
    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    ok = cap.isOpened() and cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, n - 1)) and cap.read()[0]
    cap.release()
    if n != N_FRAMES[which] or not ok:
        return f"is damaged ({n} of {N_FRAMES[which]} frames decode)"
    return None


def _render_sample(which):
    video, npy = clip_path(which), joints_path(which)
    joints, frames = _frames(which)
    with VideoWriter(video, FPS, crf=CRF) as w:  # streamed: the clip is never all in memory
        for frame in frames:
            w.write(frame)
    with atomic_path(npy) as tmp, open(tmp, "wb") as f:  # written last: both files present = both complete
        np.save(f, joints, allow_pickle=False)
    return video


def sample_joints(which="target"):
    """Ground-truth joints of a sample clip, (N,13,2) float32 px (renders the clip first if needed)."""
    ensure_sample(which)
    return np.load(joints_path(which), allow_pickle=False)


def contact_sheet(which, n=8, cols=4):
    """A few evenly spaced frames of a clip with the ground-truth joints dotted on (left red, right blue)."""
    index = np.linspace(0, N_FRAMES[which] - 1, n).round().astype(int)
    frames, joints = render_clip(which, index)
    tiles = []
    for i, tile, pose in zip(index, frames, joints, strict=True):
        for k, (x, y) in enumerate(pose):
            color = (255, 255, 255) if k == NOSE else (0, 0, 255) if JOINT_NAMES[k].startswith("left") else (255, 0, 0)
            cv2.circle(tile, (round(float(x) * 4), round(float(y) * 4)), 8, color, -1, cv2.LINE_AA, shift=2)
        cv2.putText(tile, f"{which} {i}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    return np.concatenate([np.concatenate(tiles[r : r + cols], axis=1) for r in range(0, len(tiles), cols)], axis=0)


# --------------------------------------------------------------------------- footage as people film it
# The same mannequins framed as users' clips are (a phone held upright, a person off-centre or walking across a
# wide frame, a panning camera, two people) and written as a phone writes them (display rotation, variable frame
# rate): what the framing, rotation and target-report tests extract.


@dataclass(frozen=True)
class Person:
    """One mannequin in a shot; x positions are fractions of the frame's width, y positions and sizes of its height."""

    which: str = "target"  # whose figure and routine (a key of FIGURES)
    cx: float = 0.5  # pelvis x at rest (the sample: 160 / 320)
    floor: float = 0.9375  # y of the soles (the sample: 240 / 256)
    height: float = 0.71875  # sole to top of head (the sample: 184 / 256)
    walk: float = 0.0  # x travelled, steadily, over the clip (walking across)
    start: int = 0  # first frame of its routine (which repeats past its end)


@dataclass(frozen=True)
class Shot:
    """A synthetic clip as somebody might film it: frame size (px), people, length, camera."""

    width: int = FRAME_W
    height: int = FRAME_H
    people: tuple = (Person(),)
    frames: int = 100
    pan: float = 0.0  # the camera turns sideways by this fraction of the width over the clip: the room moves


SHOTS = {
    "portrait": Shot(180, 320, (Person(height=0.86, floor=0.955),)),  # a phone held upright, the dancer fills it
    "off_centre": Shot(448, 256, (Person(cx=0.17),)),
    "walk": Shot(448, 256, (Person(cx=0.2, walk=0.6, height=0.62),)),
    "pan": Shot(320, 256, pan=0.12),
    "two_people": Shot(448, 256, (Person(cx=0.3), Person("source", cx=0.72, start=40))),
    "small": Shot(448, 256, (Person(height=0.42, floor=0.8),)),
}


def shot_figures(shot):
    """Each person's Figure, placed and sized in the shot's pixels."""
    return [
        replace(FIGURES[p.which], height=p.height * shot.height, cx=p.cx * shot.width, floor_y=p.floor * shot.height)
        for p in shot.people
    ]


def _camera(shot):
    """(N,) int: the viewport's x offset (px) in the room for each frame (0 for a still camera)."""
    return np.round(shot.pan * shot.width * np.linspace(0.0, 1.0, shot.frames)).astype(int)


def shot_poses(shot):
    """Ground truth of a shot without rendering it: joints (P,N,13,2) float32 px of the frame, head centres
    (P,N,2) px and head angles (P,N) rad, P = len(shot.people)."""
    if any(p.which not in FIGURES for p in shot.people):
        raise UserError(f"unknown figure in {shot.people}; expected one of {', '.join(FIGURES)}")
    offset = _camera(shot)[:, None]
    out = []
    for p, fig in zip(shot.people, shot_figures(shot), strict=True):
        params = routine(p.which)[0]
        params = params[(p.start + np.arange(shot.frames)) % len(params)].copy()
        params[:, P["x"]] += p.walk * shot.width * np.linspace(0.0, 1.0, shot.frames) / fig.height
        joints, head_c, head_ang = forward_kinematics(params, fig)
        joints[..., 0] -= offset
        head_c[..., 0] -= offset[:, 0]
        out.append((joints, head_c, head_ang))
    return tuple(np.stack(a) for a in zip(*out, strict=True))


def render_shot(shot):
    """Render a shot: frames (N, height, width, 3) uint8 BGR and joints (P,N,13,2) float32 px of the frame."""
    joints, head_c, head_ang = shot_poses(shot)
    figs = shot_figures(shot)
    offset = _camera(shot)
    room = background(figs[0], shot.width + int(offset.max()), shot.height)  # the first person's room
    frames = np.empty((shot.frames, shot.height, shot.width, 3), np.uint8)
    for i, o in enumerate(offset):
        img = room[:, o : o + shot.width].copy()
        for k in np.argsort(-joints[:, i, :, 1].max(axis=1)):  # the one nearer the camera (lower feet) last
            draw_figure(img, figs[k], joints[k, i], head_c[k, i], head_ang[k, i])
        frames[i] = to_bgr8(img)
    return frames, joints


def vfr_times(rates):
    """Frame times (s) of a clip made of segments ((n frames, at fps), ...): (sum n,) float64."""
    dts = np.concatenate([np.full(int(n), 1.0 / fps) for n, fps in rates])
    return np.concatenate([[0.0], np.cumsum(dts)[:-1]])


def _ffmpeg(*args):
    """Run the ffmpeg that imageio-ffmpeg ships; RuntimeError with its message if it fails."""
    import subprocess

    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.strip()[-400:]}")


def write_clip(path, frames, *, fps=FPS, rotation=0, rates=None):
    """Write upright frames (N,H,W,3) uint8 BGR as an H.264 mp4 the way a phone does, atomically.

    rotation (0/90/180/270): the pictures are stored turned and the file says "display rotated by `rotation`
    degrees" (counter-clockwise), so players show them upright. rates ((n, fps), ...): variable frame rate, the
    segments' frames spaced 1/fps apart (fps must divide 600); default: constant `fps`.
    """
    import tempfile

    if rotation % 90 or rates is not None and sum(n for n, _ in rates) != len(frames):
        raise UserError(f"rotation must be a multiple of 90 and rates must cover the {len(frames)} frames")
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="mannequin-") as tmp, atomic_path(path) as out:
        step = Path(tmp) / "cfr.mp4"
        with VideoWriter(step, fps, crf=CRF) as w:
            for f in frames:
                w.write(np.rot90(f, k=-(rotation // 90)))  # stored turned clockwise, shown turned back
        if rates is not None:
            ticks = [600 / r for _, r in rates]  # frame spacing in 1/600 s: 15, 24, 25, 30, 50, 60 fps divide it
            if any(t != int(t) for t in ticks):
                raise UserError(f"frame rates {[r for _, r in rates]} must divide 600")
            # setpts as nested ifs over the segments: (first frame, end frame, first tick, ticks per frame)
            parts, first, t0 = [], 0, 0
            for (n, _), t in zip(rates, ticks, strict=True):
                parts.append((first, first + int(n), t0, int(t)))
                first, t0 = first + int(n), t0 + int(n * t)
            expr = "{2}+(N-{0})*{3}".format(*parts[-1])
            for a, b, s0, t in reversed(parts[:-1]):
                expr = f"if(lt(N,{b}),{s0}+(N-{a})*{t},{expr})"
            vfr = Path(tmp) / "vfr.mp4"
            _ffmpeg("-i", step, "-vf", f"settb=1/600,setpts='{expr}'", "-fps_mode", "passthrough",
                    "-enc_time_base", "1/600", "-c:v", "libx264", "-crf", CRF, "-pix_fmt", "yuv420p", vfr)  # fmt: skip
            step = vfr
        if rotation % 360:
            _ffmpeg("-display_rotation", rotation % 360, "-i", step, "-c", "copy", "-f", "mp4", out)
        else:
            os.replace(step, out)
    return path
