"""The target report: what a clip is worth as a target, and what to film differently.

VideoSkeleton writes it next to each cache when it extracts a clip (report.json, and report.png: a contact sheet
whose first tile shows the whole video frame with the stored square), and prints it. It measures: frames and the
share with a person, the person's height in the stored square and in the video's pixels, joints outside the
picture, how much of the pose space the clip covers (Coverage), whether the camera moved (the background's shift
between frames spread over the clip), a second person, and whether the clip is long enough to train on. Each
problem is one plain line that says what to film differently.
"""

import json
from pathlib import Path

from deepdance import coverage
from deepdance.files import atomic_path, write_png
from deepdance.skeleton import body_height, draw_skeleton

import cv2
import numpy as np

MIN_FRAMES = 300  # frames with a person below which a clip is too short to train on well (Train refuses < ~20;
GOOD_FRAMES = 1000  # the lab's target, taichi1, has 1300)
MIN_PRESENT = 0.9  # share of the frames with the person found below which the footage is reported
MIN_FILL = 0.45  # standing height / square side below which the person is small in the stored square
STANDING = 1 / 0.88  # standing height / Skeleton.body_height (nose-to-ankle chain; the mannequin's ratio, a person's)
MIN_PERSON_PX = 128  # standing height (video px) below which the stored 256 px frames are enlarged more than 2x
MAX_OFF_PICTURE = 0.05  # share of frames with a joint outside the picture (head or feet cut off) that is reported
MAX_CAMERA_SHIFT = 0.03  # background shift (share of the picture's longer side) beyond which the camera moved
STILL_DIFF = 0.25  # mean grey-level difference of two small frames' backgrounds below which nothing moved
SECOND_PERSON_SHARE = 0.25  # share of the checked frames showing someone else that is reported
SHEET_TILES, SHEET_TILE, SHEET_COLS = 12, 160, 4  # the contact sheet: tiles (the first is the framing), px, columns


# --------------------------------------------------------------------------- measures


def camera_motion(backgrounds, people, min_corners=12):
    """How far the background moved over the clip.

    backgrounds: (K,h,w) uint8, the whole video frame small and grey at frames spread over the clip; people:
    (K,P,13,2) the joints of who was found there, in [0,1] of the frame (NaN: nobody). Each later frame is compared
    with the first, away from the people: where the background looks the same (mean difference under STILL_DIFF
    grey levels) the camera stood still; elsewhere corners of the first one's background are followed into it with
    pyramidal Lucas-Kanade, there and back (corners that do not come back to where they started are dropped), and
    the displacement most of them share is the camera's. Returns {"measured": bool (False: nothing to compare),
    "shift": the largest, as a share of the picture's longer side (1.0 if the background could not be found again
    in over a quarter of the frames), "lost": in how many it could not}.
    """
    k = len(backgrounds)
    if k < 2:
        return {"measured": False, "shift": None, "lost": 0}
    h, w = backgrounds.shape[1:]
    masks = np.ones((k, h, w), bool)
    px = np.asarray(people, np.float64).reshape(k, -1, 13, 2) * (w, h)
    for m, frame_people in zip(masks, px, strict=True):
        for p in frame_people[np.isfinite(frame_people).all(axis=(1, 2))]:
            pad = 0.3 * float(body_height(p))  # the head's top, hands and feet beyond the joints, the shadow
            (x0, y0), (x1, y1) = np.floor(p.min(0) - pad).astype(int), np.ceil(p.max(0) + pad).astype(int)
            m[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = False
    ref = backgrounds[0].astype(np.int16)
    pts = cv2.goodFeaturesToTrack(backgrounds[0], 200, 0.01, 3, mask=masks[0].astype(np.uint8))
    lk = {"winSize": (15, 15), "maxLevel": 3}
    shifts, lost = [], 0
    for g, m in zip(backgrounds[1:], masks[1:], strict=True):
        both = m & masks[0]
        if both.mean() < 0.05:  # the people hide nearly everything
            continue
        if np.abs(g.astype(np.int16) - ref)[both].mean() < STILL_DIFF:
            shifts.append(0.0)
            continue
        if pts is None or len(pts) < min_corners:  # changed, but nothing to follow: cannot say how
            lost += 1
            continue
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(backgrounds[0], g, pts, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(g, backgrounds[0], nxt, None, **lk)
        ok = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm((back - pts).reshape(-1, 2), axis=1) < 0.5)
        xy = np.round(nxt.reshape(-1, 2)).astype(int)
        ok &= (xy >= 0).all(axis=1) & (xy[:, 0] < w) & (xy[:, 1] < h)
        ok[ok] = m[xy[ok, 1], xy[ok, 0]]  # landed on background, not on someone
        if ok.sum() < min(6, len(pts) // 2):
            lost += 1
            continue
        d = (nxt - pts).reshape(-1, 2)[ok]
        # The camera moves every background corner alike: the displacement most corners share (within 1 px) is its;
        # someone else walking by, or a caption burnt into the picture, moves fewer corners alike.
        near = np.linalg.norm(d[:, None] - d[None], axis=-1) < 1.0
        shifts.append(float(np.linalg.norm(np.median(d[near[np.argmax(near.sum(1))]], axis=0))))
    if not shifts and not lost:
        return {"measured": False, "shift": None, "lost": 0}
    shift = 1.0 if lost > (k - 1) // 4 else max(shifts, default=0.0) / max(h, w)
    return {"measured": True, "shift": round(shift, 4), "lost": lost}


def _off_picture(skeletons, crop, size_wh):
    """Share of the frames with a person where a joint lies outside the video's picture (MediaPipe guessed it)."""
    x0, y0, side = crop
    w, h = size_wh
    px = np.asarray(skeletons, np.float64) * side + (x0, y0)
    ok = np.isfinite(px).all(axis=(1, 2))
    if not ok.any():
        return 0.0
    out = (px[ok] < 0).any(axis=(1, 2)) | (px[ok, :, 0] > w).any(axis=1) | (px[ok, :, 1] > h).any(axis=1)
    return float(out.mean())


def measure(meta, skeletons, backgrounds=None):
    """The report's numbers (a JSON-able dict) from a cache's meta.json and skeletons (N,13,>=2) in [0,1] of the
    stored square (NaN where nobody); backgrounds = ((K,h,w) uint8 grey whole frames, (K,) their rows, (K,13,>=2) who
    else was found there in [0,1] of the frame) for the camera check (None: not measured)."""
    xy = np.asarray(skeletons, np.float64)[..., :2]
    valid = np.isfinite(xy).all(axis=(1, 2))
    n, found = len(xy), int(valid.sum())
    x0, y0, side = (int(v) for v in meta["crop"])
    w, h = meta["video_size"]
    fill = float(np.median(body_height(xy[valid]))) * STANDING if found else 0.0
    camera = {"measured": False, "shift": None, "lost": 0}
    if backgrounds is not None and len(backgrounds[0]) > 1:
        grey, rows, others = backgrounds
        followed = (xy[rows] * side + (x0, y0)) / (w, h)  # joints in [0,1] of the whole frame
        camera = camera_motion(grey, np.stack([followed, np.asarray(others, np.float64)[..., :2]], axis=1))
    return {
        "video": meta["source"],
        "frames": n,
        "with_person": found,
        "share_with_person": round(found / max(n, 1), 4),
        "duration_s": meta.get("duration"),
        "fps": meta.get("fps"),
        "vfr": meta.get("vfr", False),
        "rotation": meta.get("rotation", 0),
        "video_size": meta["video_size"],
        "framing": meta.get("framing"),
        "crop": meta["crop"],
        "padding": meta.get("padding"),
        "height_in_square": round(fill, 4),  # standing height / the square's side (median)
        "height_px": round(fill * side, 1),  # standing height in the video's pixels (median)
        "off_picture": round(_off_picture(xy, meta["crop"], meta["video_size"]), 4),
        "camera": camera,
        "people": meta.get("people", {}),
        "poses": coverage.coverage_summary(xy[valid]),
    }


# --------------------------------------------------------------------------- verdict


def problems(m):
    """[(code, line)]: each problem found in measure()'s numbers, as one line saying what to film differently."""
    out = []
    found, share = m["with_person"], m["share_with_person"]
    if found < MIN_FRAMES:
        out.append(("too_short", f"too short to train on: {found} frames with the person (at least {MIN_FRAMES}, "
                                 f"{GOOD_FRAMES}+ is better): film 2-3 minutes of varied moves"))  # fmt: skip
    if share < MIN_PRESENT:
        out.append(("person_missing", f"the person is found in only {100 * share:.0f}% of the frames: keep the whole "
                                      "body in view all the time, well lit, with nothing in front of it"))  # fmt: skip
    if found and m["height_in_square"] < MIN_FILL:
        out.append(("too_small", f"the person fills only {100 * m['height_in_square']:.0f}% of the stored square's "
                                 "height (far away, or moving over a wide area): film closer and stay in a smaller "
                                 "area"))  # fmt: skip
    if found and m["height_px"] < MIN_PERSON_PX:
        out.append(("low_resolution", f"the person is only {m['height_px']:.0f} px tall in the video, so its frames "
                                      "are enlarged and blurry: film closer or at a higher resolution"))  # fmt: skip
    if m["off_picture"] > MAX_OFF_PICTURE:
        out.append(("cut_off", f"part of the body is outside the picture in {100 * m['off_picture']:.0f}% of the "
                               "frames (head, hands or feet cut off): step back or zoom out so the whole body "
                               "stays in view"))  # fmt: skip
    cam = m["camera"]
    if cam.get("measured") and cam["shift"] > MAX_CAMERA_SHIFT:
        how = (f"the background shifts by up to {100 * cam['shift']:.0f}% of the picture" if cam["shift"] < 1 else
               "the background changes beyond recognition")  # fmt: skip
        out.append(("camera_moved", f"the camera moved ({how}): put the camera on a tripod or lean it against "
                                    "something still, and do not pan or zoom"))  # fmt: skip
    people = m["people"]
    checked, second = people.get("checked", 0), people.get("second_person", 0)
    if people.get("tracker_switches", 0) or checked and second >= max(2, SECOND_PERSON_SHARE * checked):
        what = f"someone else is in the picture in {second} of {checked} checked frames"
        if people.get("tracker_switches", 0):
            what += f"; the tracker went over to them {people['tracker_switches']} times (those frames are dropped)"
        out.append(("two_people", f"{what}: film the target alone"))
    poses = m["poses"]
    if found and poses["few_poses"]:
        out.append(("few_poses", f"the poses barely vary (typical difference {poses['spread_deg']:.0f} degrees of "
                                 "limb direction): film a few minutes of varied moves: arm raises, bends, steps, "
                                 "turns"))  # fmt: skip
    return out


def notes(m):
    """Lines that are not problems but worth knowing: padding, rotation, frame rate, poses never made."""
    out = []
    x0, y0, side = m["crop"]
    pad = m.get("padding") or (0, 0, 0, 0)
    w, h = m["video_size"]
    framing = "holding the whole body" if m.get("framing") == "person" else "the centre crop"
    padded = f"; black padding left/top/right/bottom {'/'.join(map(str, pad))} px" if any(pad) else ""
    out.append(f"stored square: {side} px at ({x0}, {y0}) of the {w}x{h} picture, {framing}{padded}")
    if m.get("rotation"):
        out.append(f"turned upright by {m['rotation']} degrees, as the file's rotation metadata says")
    if m.get("vfr"):
        out.append("uneven frame times (a variable frame rate, or frames missing from the file): each frame's true "
                   "time is kept (times.npy)")  # fmt: skip
    never = [coverage.FEATURES[k] for k in m["poses"]["never"]]
    if never:
        out.append("never seen in this clip (a source doing these will be rendered poorly): " + "; ".join(never))
    return out


# --------------------------------------------------------------------------- the contact sheet


def _caption(tile, text, color=(255, 255, 255)):
    for ink, thick in (((0, 0, 0), 3), (color, 1)):
        cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, ink, thick, cv2.LINE_AA)


def framing_tile(thumb, crop, size_wh, tile=SHEET_TILE):
    """The whole upright video frame (thumb: a small copy of it) on a grey ground with the stored square (green) and
    the course's centre crop (red), fitted into a tile x tile picture: (tile, tile, 3) uint8 BGR."""
    w, h = size_wh
    x0, y0, side = crop
    s = min(w, h)
    cx0, cy0 = (w - s) // 2, (h - s) // 2
    lo = np.array([min(0, x0), min(0, y0)], float)
    hi = np.array([max(w, x0 + side), max(h, y0 + side)], float)
    k = (tile - 8) / max(hi - lo)
    off = (tile - k * (hi - lo)) / 2 - k * lo  # picture px -> tile px: p * k + off

    def at(x, y):
        return int(round(x * k + off[0])), int(round(y * k + off[1]))

    out = np.full((tile, tile, 3), 70, np.uint8)
    (ax, ay), (bx, by) = at(0, 0), at(w, h)
    if bx > ax and by > ay:
        out[ay:by, ax:bx] = cv2.resize(np.asarray(thumb), (bx - ax, by - ay), interpolation=cv2.INTER_AREA)
    cv2.rectangle(out, at(cx0, cy0), at(cx0 + s, cy0 + s), (60, 60, 230), 1, cv2.LINE_AA)
    cv2.rectangle(out, at(x0, y0), at(x0 + side, y0 + side), (80, 220, 80), 2, cv2.LINE_AA)
    _caption(out, f"video {w}x{h}")
    return out


def contact_sheet(frames, skeletons, times, meta, thumb=None):
    """report.png: the framing tile (if thumb) then frames spread over the clip with their skeletons, captioned
    with their frame number and time ("no person" in red): (rows*T, cols*T, 3) uint8 BGR."""
    t = SHEET_TILE
    tiles = [framing_tile(thumb, meta["crop"], meta["video_size"])] if thumb is not None else []
    picks = np.unique(np.linspace(0, len(frames) - 1, SHEET_TILES - len(tiles)).round().astype(int))
    index = meta["frame_indices"]
    for r in picks:
        tile = cv2.resize(np.asarray(frames[r]), (t, t), interpolation=cv2.INTER_AREA)
        ok = np.isfinite(skeletons[r, :, :2]).all()
        if ok:
            draw_skeleton(tile, skeletons[r, :, :2], max(1, t // 80))
        text = f"#{index[r]} {times[r]:.1f}s" + ("" if ok else " no person")
        _caption(tile, text, (255, 255, 255) if ok else (60, 60, 255))
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % SHEET_COLS)
    rows = [np.concatenate(tiles[i : i + SHEET_COLS], axis=1) for i in range(0, len(tiles), SHEET_COLS)]
    return np.concatenate(rows, axis=0)


# --------------------------------------------------------------------------- writing and telling


def write_report(folder, *, meta, skeletons, times, backgrounds=None):
    """Measure a cache being written in `folder` (frames.npy there; thumb.npy, the first frame whole, if any: used
    and removed) and write report.json and report.png into it. Returns the report (a dict). backgrounds: see
    measure."""
    frames = np.load(folder / "frames.npy", mmap_mode="r", allow_pickle=False)
    thumb = None
    if (folder / "thumb.npy").is_file():
        thumb = np.load(folder / "thumb.npy", allow_pickle=False)
        (folder / "thumb.npy").unlink()
    report = measure(meta, skeletons, backgrounds)
    report["problems"] = [{"code": c, "line": line} for c, line in problems(report)]
    report["notes"] = notes(report)
    report["contact_sheet"] = "report.png"
    # PNG level 3: a tenth of level 9's time (1.4 s for this sheet), a slightly bigger file
    write_png(folder / "report.png", contact_sheet(frames, np.asarray(skeletons), times, meta, thumb), compression=3)
    with atomic_path(folder / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    return report


def saved_report(cache, meta, skeletons):
    """The target report saved in cache (report.json) -> (report, None). One that is missing, unreadable or
    damaged (missing keys, not a JSON object) -> (the report measured again from the cache's meta and skeletons,
    the camera left unmeasured: its backgrounds are not kept; None if even that fails, the note line saying so)."""
    path = Path(cache) / "report.json"
    try:
        report = json.loads(path.read_text())
        if not isinstance(report, dict):
            raise ValueError("not a JSON object")
        describe_report(report)  # what is printed must be there, and a problem's code (bench/extract.py) too
        if not all(isinstance(p, dict) and isinstance(p.get("code"), str) for p in report["problems"]):
            raise ValueError("a problem without its code")
        return report, None
    except FileNotFoundError:
        why = "is missing"
    except OSError as e:
        why = f"cannot be read ({e.strerror or type(e).__name__})"
    except KeyError as e:
        why = f"is damaged (it lacks {e})"
    except (ValueError, TypeError, AttributeError, IndexError) as e:  # not what write_report writes
        why = f"is damaged ({e!s:.80})"
    try:
        report = measure(meta, skeletons)
        report["problems"] = [{"code": c, "line": line} for c, line in problems(report)]
        report["notes"] = notes(report)
    except (ValueError, KeyError, TypeError, IndexError):
        return None, f"the target report {path} {why}: extract the clip again (--force) to measure it"
    return report, f"the target report {path} {why}: measured again from the cache below, without the camera " \
                   "check (--force extracts the clip again for a whole one)"  # fmt: skip


def describe_report(report, cache=None):
    """The report as printed: a headline, the notes, then one line per problem (or that none was found)."""
    r = report
    where = f" ({cache}/report.json, contact sheet report.png)" if cache is not None else ""
    dur = f", {r['duration_s']:.1f} s" if r.get("duration_s") else ""
    cam = r["camera"]
    camera = f"background shift {100 * cam['shift']:.1f}%" if cam.get("measured") else "camera motion not measured"
    lines = [
        f"target report{where}:",
        f"  {r['frames']} frames{dur}; the person in {r['with_person']} ({100 * r['share_with_person']:.1f}%), "
        f"{100 * r['height_in_square']:.0f}% of the square's height ({r['height_px']:.0f} px in the video); "
        f"{camera}; pose spread {r['poses']['spread_deg'] or 0:.0f} degrees",
        *(f"  {n}" for n in r["notes"]),
    ]
    if r["problems"]:
        lines.append(f"  {len(r['problems'])} problem{'s' * (len(r['problems']) > 1)}:")
        lines += [f"  - {p['line']}" for p in r["problems"]]
    else:
        lines.append("  no problems found")
    return "\n".join(lines)
