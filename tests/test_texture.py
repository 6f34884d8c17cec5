"""GenTexture (gen_type 9): the warp, the retrieval exclusion window, training, save/load, the table, bad input."""

from pathlib import Path

from deepdance import evaluation, files, gentypes, recipes, texture, training_data
from deepdance.cli import UserError, run_cli
from deepdance.skeleton import Skeleton, person_mask

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import GenTexture
from conftest import FakeVS, run_script

S = 32  # px: tiny frames and a tiny net keep every test here under a few seconds
TINY = {
    "unet": {"size": S, "in_ch": 11, "out_ch": 6, "ch": [8, 16], "n_res": 1, "attn": False, "ps": 2},
    "max_flow": 0.5,
    "prior": True,
    "interp": "bicubic",
}


class TexVS(FakeVS):
    """FakeVS with a frame rate (GenNearest keeps each frame's time for its coherent mode)."""

    fps = 10.0


def tiny_config(**kw):
    return texture.TextureConfig(**{"size": S, "epochs": 1, "batch": 8, "model_args": TINY, **kw})


def coloured(n, size=S):
    """(n, S, S, 3) uint8 frames whose first two channels spell their index (read back by frame_ids)."""
    img = np.zeros((n, size, size, 3), np.uint8)
    img[..., 0] = (np.arange(n) % 256)[:, None, None]
    img[..., 1] = (np.arange(n) // 256)[:, None, None]
    return img


def frame_ids(x):
    """Inverse of coloured() for a batch of [-1, 1] tensors (B, 3, S, S)."""
    v = ((x[:, :2, 0, 0] + 1) * 127.5).round().long()
    return (v[:, 0] + 256 * v[:, 1]).numpy()


# --------------------------------------------------------------------------- the network


def test_shapes_and_ranges(one_thread):
    net = texture.TextureNet(**TINY)
    x = torch.rand(4, recipes.TEXTURE_IN_CH, S, S) * 2 - 1
    y = net(x)
    assert y.shape == (4, 3, S, S) and y.dtype == torch.float32
    assert y.min() >= -1 and y.max() <= 1
    xy = TexVS("/unused").xy[:4]
    inp = texture.texture_input(xy, coloured(4), xy[::-1].copy(), S)
    assert inp.shape == (4, 11, S, S) and inp[:, :9].min() >= -1 and inp[:, :9].max() <= 1
    assert recipes.size_recipe(128).texture["unet"]["in_ch"] == 11


class FixedUNet(torch.nn.Module):
    """Stands in for the U-Net: returns a set flow (grid units), mask and colours everywhere."""

    def __init__(self, flow=(0.0, 0.0), mask=1.0, colour=0.0):
        super().__init__()
        self.out = (*flow, 2 * mask - 1, colour, colour, colour)

    def forward(self, x):
        return torch.tensor(self.out, dtype=x.dtype)[None, :, None, None].expand(len(x), 6, *x.shape[-2:])


def test_the_output_is_the_reference_moved_where_the_mask_says(one_thread):
    net = texture.TextureNet(**TINY)
    ref = torch.rand(2, 3, S, S) * 2 - 1
    x = torch.cat([torch.zeros(2, 3, S, S), ref, torch.zeros(2, 5, S, S)], 1)  # joint flow 0
    net.unet = FixedUNet()  # no flow, mask 1: the reference itself, pixel for pixel
    torch.testing.assert_close(net(x), ref)
    px = 2.0 / S  # one pixel in grid units
    net.unet = FixedUNet(flow=(px / net.max_flow, 0.0))  # one pixel to the right: each pixel shows its neighbour's
    torch.testing.assert_close(net(x)[..., :-1], ref[..., 1:])
    x[:, 10] = 2 * px  # the joint flow adds two pixels down
    torch.testing.assert_close(net(x)[..., :-2, :-1], ref[..., 2:, 1:])
    net.unet = FixedUNet(mask=0.0, colour=0.25)  # mask 0: the painted colour
    torch.testing.assert_close(net(x), torch.full_like(ref, 0.25))


def test_joint_flow_brings_the_references_joints_under_the_querys():
    from conftest import POSE

    size = 64
    query, ref = POSE.copy(), POSE.copy()
    ref[5] += [0.08, -0.05]  # the reference's left wrist is elsewhere
    flow = texture.joint_flow(query[None], ref[None], size)
    assert flow.shape == (1, 2, size, size)
    image = torch.zeros(1, 3, size, size)
    x0, y0 = (ref[5] * size).astype(int)
    image[..., y0 - 1 : y0 + 2, x0 - 1 : x0 + 2] = 1.0  # a dot on the reference's wrist
    c = (torch.arange(size) + 0.5) / size * 2 - 1
    grid = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1)[None] + flow.permute(0, 2, 3, 1)
    moved = texture.sample(image, grid)[0, 0]
    y, x = np.unravel_index(moved.argmax().item(), moved.shape)
    assert np.hypot(x + 0.5 - query[5, 0] * size, y + 0.5 - query[5, 1] * size) < 2  # within 2 px of the query's wrist
    assert flow[0, :, :4, :4].abs().max() == 0  # far from every joint nothing moves
    same = texture.joint_flow(query[None], query[None], size)
    assert same.abs().max() == 0


# --------------------------------------------------------------------------- retrieval while training


def test_references_are_the_nearest_frames_outside_the_window():
    rng = np.random.default_rng(0)
    n = 60
    xy = rng.uniform(0.2, 0.8, (n, 13, 2)).astype(np.float32)
    xy[1:] = 0.9 * xy[:-1] + 0.1 * xy[1:]  # neighbours in time are near-duplicates (as in a video)
    rows = np.cumsum(rng.integers(1, 3, n))  # cache rows with gaps (frames without a person)
    for exclude in (0, 3, 8):
        refs = texture.reference_table(xy, rows, exclude=exclude, k=3, chunk=16)
        assert refs.shape == (n, 3)
        assert (np.abs(rows[refs] - rows[:, None]) > exclude).all()  # never the frame itself nor its neighbours
        d = np.linalg.norm(xy.reshape(n, 1, 26) - xy.reshape(1, n, 26), axis=-1)
        d[np.abs(rows[:, None] - rows[None]) <= exclude] = np.inf
        np.testing.assert_allclose(np.take_along_axis(d, refs, 1), np.sort(d, 1)[:, :3], rtol=1e-5)
    with pytest.raises(UserError, match="too few"):
        texture.reference_table(xy[:10], np.arange(10), exclude=4, k=2)


def motion(fps, seconds=40.0, start=0.0, seed=0):
    """A dance sampled at fps from `start` s: (N, 13, 2) joints that wander smoothly (the same motion whatever fps)."""
    t = np.arange(start, start + seconds, 1.0 / fps)
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, (3, 13, 2))
    wave = sum(np.sin(f * t[:, None, None] + phases[i]) for i, f in enumerate((0.7, 1.3, 2.9)))
    return (0.5 + 0.04 * wave).astype(np.float32)


def median_reach(xy, rows, w):
    """Median over frames of the distance to the nearest frame outside +-w rows (by brute force)."""
    d = np.linalg.norm(xy.reshape(len(xy), 1, 26) - xy.reshape(1, len(xy), 26), axis=-1)
    d[np.abs(rows[:, None] - rows[None]) <= w] = np.inf
    return np.median(d.min(1))


def test_the_auto_window_makes_training_references_as_far_as_the_held_out_poses():
    held = motion(10, seconds=8, start=45)  # later in the dance: as far as inference's references will be
    widths = {}
    for fps in (10, 30):
        xy = motion(fps)
        rows = np.arange(len(xy))
        goal = np.median(np.linalg.norm(held.reshape(-1, 1, 26) - xy.reshape(1, -1, 26), axis=-1).min(1))
        held_reach = float(np.median(texture.nearest_training(xy, held)[1]))  # what train() passes
        w = texture.auto_exclude(xy, rows, held_reach, chunk=64)
        assert median_reach(xy, rows, w) >= goal > median_reach(xy, rows, w - 1)  # the fewest rows that do
        assert texture.reference_reach(xy, rows, w, chunk=64) == pytest.approx(median_reach(xy, rows, w), rel=1e-4)
        assert held_reach == pytest.approx(goal, rel=1e-4)
        widths[fps] = w
    assert widths[10] > 0 and 2.5 <= widths[30] / widths[10] <= 3.5  # the same motion: 3x the frames, 3x the rows
    # Held-out poses unlike any training pose: the widest window that still leaves k frames outside it.
    xy = motion(10, seconds=3)
    far = float(np.median(texture.nearest_training(xy, xy[:5] + 0.3)[1]))
    assert texture.auto_exclude(xy, np.arange(len(xy)), far, k=3) == (len(xy) - 3 - 1) // 2


def test_training_batches_take_their_reference_outside_the_window(one_thread):
    from deepdance.dataset import PoseDataset

    vs = TexVS("/unused", n=40)
    ds = PoseDataset(vs.xy, coloured(40), np.arange(40))
    rows = vs.rows * 2  # every other cache row held a frame without a person
    cfg = tiny_config(aug_prob=0.0, exclude=3, ref_k=3)
    refs = torch.from_numpy(texture.reference_table(vs.xy, rows, exclude=cfg.exclude, k=cfg.ref_k))
    rng = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        idx = torch.randperm(40, generator=rng)[:8]
        x, real, cond, cost, _ = texture.make_batch(ds, idx, refs, cfg, rng, torch.device("cpu"))
        assert x.shape == (8, 11, S, S) and real.shape == cond.shape == (8, 3, S, S)
        assert cost.shape == (8, 1, S, S)  # lambda_mask on the person, lambda_mask_bg (0 by default) off it:
        np.testing.assert_allclose(cost.unique().numpy(), [cfg.lambda_mask_bg, cfg.lambda_mask], rtol=1e-6)
        picked = frame_ids(x[:, 3:6])
        assert (np.abs(rows[picked] - rows[idx.numpy()]) > cfg.exclude).all()
        assert all(p in refs[i].tolist() for p, i in zip(picked, idx.tolist(), strict=True))
        np.testing.assert_array_equal(frame_ids(real), idx.numpy())  # the target itself is the frame asked for
        seen.update(zip(idx.tolist(), picked.tolist(), strict=True))
    assert len({p for i, p in seen if i == 20} | {p for i, p in seen if i == 21}) > 1  # drawn among the k nearest


def test_painting_costs_lambda_mask_on_the_person_and_lambda_mask_bg_off_it():
    from conftest import POSE

    xy = np.stack([POSE, POSE])
    flat = texture.paint_cost(xy, tiny_config(lambda_mask=0.2, lambda_mask_bg=0.2))
    assert flat.shape == (2, 1, S, S) and (flat == 0.2).all()  # the same cost on and off the person
    cost = texture.paint_cost(xy, tiny_config(lambda_mask=0.5, lambda_mask_bg=0.0))
    person = person_mask(xy, S)
    assert 0 < person.mean() < 0.5
    np.testing.assert_array_equal(cost[:, 0].numpy(), 0.5 * person)


def test_training_with_a_free_background_stores_the_setting(tmp_path, one_thread):
    vs = TexVS(tmp_path / "bg", n=40)
    cfg = tiny_config(lambda_mask_bg=0.1)
    summary = texture.train(vs, cfg, out=tmp_path / "run", verbose=False)
    assert np.isfinite(summary["last"]["train_loss"])
    ckpt = torch.load(tmp_path / "run" / "best.pth", weights_only=True)
    assert ckpt["config"]["lambda_mask_bg"] == 0.1 and ckpt["config"]["lambda_mask"] == cfg.lambda_mask
    assert ckpt["config"]["lambda_ssim"] == recipes.size_recipe(S).texture_lambda_ssim  # stored as used, not None


def test_the_ssim_weight_defaults_by_size():
    weights = recipes.TEXTURE_LAMBDA_SSIM
    assert (
        recipes.size_recipe(64).texture_lambda_ssim == weights[64]
        and recipes.size_recipe(128).texture_lambda_ssim == weights[128]
    )
    assert (
        recipes.size_recipe(256).texture_lambda_ssim == weights[128]
        and recipes.size_recipe(S).texture_lambda_ssim == weights[64]
    )


# --------------------------------------------------------------------------- training, checkpoints, loading


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of the tiny net on the synthetic target, into its default checkpoint folder."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    vs = TexVS(tmp_path_factory.mktemp("texture"), n=40)
    summary = texture.train(vs, tiny_config(), verbose=False)
    torch.set_num_threads(n)
    return vs, summary


def test_one_epoch_writes_the_run(trained):
    vs, summary = trained
    out = gentypes.checkpoint_dir(vs, 9, S)
    assert summary["out"] == str(out) and summary["epoch"] == 1
    for name in ("best.pth", "latest.pth", "train_log.csv", "loss.png", "samples.png"):
        assert (out / name).stat().st_size > 0, name
    header = (out / "train_log.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "train_l1", "val_l1", "val_box_ssim", "val_sharpness"} <= set(header)
    assert np.isfinite(summary["best"]["box_ssim"]) and summary["images"] == 16  # 2 steps of 8 of the 20 train frames


def test_checkpoint_round_trip(trained, one_thread):
    vs, summary = trained
    path = gentypes.checkpoint_dir(vs, 9, S) / "best.pth"
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "model_args", "optimizer", "epoch", "config", "data", "format", "gen_type"):
        assert key in ckpt, key
    assert "size" not in ckpt and ckpt["config"]["size"] == S  # the size is stored once, in the config
    assert ckpt["gen_type"] == 9 and ckpt["model_args"] == TINY and ckpt["data"]["sha256"] == vs.meta["sha256"]
    gen = gentypes.load_generator(vs, 9, size=S, device="cpu")
    assert isinstance(gen, texture.GenTexture)
    # It retrieves from its training block only: evaluation's held-out block is never copied.
    train, _, val = vs.split()
    np.testing.assert_array_equal(gen.positions, train)
    query = vs.xy[val]
    out = gen.generate_batch(query)
    assert out.shape == (len(val), S, S, 3) and out.dtype == np.uint8
    # The same weights rebuilt by hand, fed the nearest training frame, give the same frames.
    net = texture.TextureNet(**ckpt["model_args"])
    net.load_state_dict(ckpt["model"])
    net.to(memory_format=torch.channels_last).eval()  # as trained.render_poses runs it (bitwise the same sums)
    rows = gen.nearest.match(query)
    x = texture.texture_input(query, vs.frames(S)[train][rows], vs.xy[train][rows], S)
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = ((net(x).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(out, expected)
    one = gen.generate(Skeleton(query[0]))
    assert one.shape == (S, S, 3) and one.dtype == np.uint8
    np.testing.assert_array_equal(one, out[0])
    bad = query[:2].copy()
    bad[1, 4] = np.nan  # a pose without a person renders black, as the other trained types
    assert gen.generate_batch(bad)[1].max() == 0
    assert gen.generate_batch(np.zeros((0, 13, 2), np.float32)).shape == (0, S, S, 3)


def test_generate_from_renders_each_pose_from_the_frame_given(trained, one_thread):
    vs, _ = trained
    gen = gentypes.load_generator(vs, 9, size=S, device="cpu")
    _, _, val = vs.split()
    query = vs.xy[val]
    rows = gen.nearest.candidates(query, 3)
    assert rows.shape == (len(val), 3)
    np.testing.assert_array_equal(rows[:, 0], gen.nearest.match(query, coherent=False))  # nearest first
    np.testing.assert_array_equal(gen.generate_from(query, rows[:, 0]), gen.generate_batch(query))
    other = gen.generate_from(query, rows[:, 2])
    assert other.shape == (len(val), S, S, 3) and not np.array_equal(other, gen.generate_batch(query))


def test_moved_is_the_nets_mask_for_the_nearest_frame(trained, one_thread):
    vs, _ = trained
    gen = gentypes.load_generator(vs, 9, size=S, device="cpu")
    query = vs.xy[vs.split()[2]]
    head, ps = gen.net.unet.head, gen.net.unet.ps
    mask_channels = slice(2 * ps * ps, 3 * ps * ps)  # the mask is output channel 2, before pixel_shuffle
    with torch.no_grad():
        head.weight[mask_channels] = 0.0
        for bias, expected in ((20.0, 1.0), (-20.0, 0.0)):  # tanh(+-20): all moved, all painted
            head.bias[mask_channels] = bias
            moved = gen.moved(query, batch=3)  # batches of 3: the parts are put back in order
            assert moved.shape == (len(query), S, S) and np.allclose(moved, expected, atol=1e-6)
        head.bias[mask_channels] = 0.0  # half and half: each pixel's output is the mean of the two
        assert np.allclose(gen.moved(query), 0.5, atol=1e-6)


def test_reference_bench_scores_the_nearest_as_evaluate_and_the_oracle_highest(trained, one_thread):
    from deepdance import metrics

    from bench import references

    vs, _ = trained
    gen = gentypes.load_generator(vs, 9, size=S, device="cpu")
    save_vanilla(vs, tiny_base())
    guide = gentypes.load_generator(vs, 3, size=S, device="cpu")
    es, _ = evaluation.held_out_set(vs, S, "select")
    out = references.compare(gen, guide, es, k=4)
    assert list(out) == ["nearest", "guided", "oracle"]
    fake = gen.generate_batch(es.xy_in)
    boxes = metrics.body_boxes(es.xy, S)
    ssim, sharp, moved = out["nearest"]
    assert ssim == pytest.approx(metrics.image_metrics(fake, es.real, es.xy)["box_ssim"], abs=1e-9) and moved == 0
    assert sharp == pytest.approx(metrics.sharpness_ratio(fake, es.real, boxes), abs=1e-9)
    # The oracle takes each frame's best of the 4: its mean is at least any other choice's.
    assert out["oracle"][0] >= max(out["nearest"][0], out["guided"][0]) - 1e-12 and out["oracle"][2] > 0


def test_resume_continues_the_run(trained, one_thread):
    vs, _ = trained
    summary = texture.train(vs, tiny_config(epochs=2), resume=True, verbose=False)
    assert summary["epoch"] == 2
    log = (gentypes.checkpoint_dir(vs, 9, S) / "train_log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["1", "2"]


def test_a_run_from_before_lambda_mask_bg_resumes_with_one_cost(tmp_path, one_thread):
    from deepdance.checkpoints import save_checkpoint

    vs = TexVS(tmp_path / "old", n=40)
    texture.train(vs, tiny_config(), out=tmp_path / "run", verbose=False)
    latest = tmp_path / "run" / "latest.pth"
    ckpt = torch.load(latest, weights_only=True)
    del ckpt["config"]["lambda_mask_bg"]  # as written before the setting existed
    save_checkpoint(ckpt, latest)
    texture.train(vs, tiny_config(epochs=2), out=tmp_path / "run", resume=True, verbose=False)
    config = torch.load(latest, weights_only=True)["config"]
    assert config["lambda_mask_bg"] == config["lambda_mask"] == texture.LAMBDA_MASK


def test_gen_type_table_and_evaluate_pick_it_up():
    spec = gentypes.GEN_TYPES[9]
    assert spec.script == "GenTexture" and spec.folder == "texture" and gentypes.gen_type_of("GenTexture") == 9
    assert gentypes.train_command(9, files.ROOT / "x.mp4") == "python GenTexture.py x.mp4"
    assert gentypes.train_command(9, files.ROOT / "x.mp4", size=128) == "python GenTexture.py x.mp4 --size 128"
    assert 9 in evaluation.parse_gen_types("all") and evaluation.LABELS[9]
    with pytest.raises(UserError, match="gen_type 9 only"):
        texture.load_generator(TexVS("/unused"), 3)


def test_missing_checkpoint_names_the_training_command(tmp_path):
    with pytest.raises(UserError, match=r"train it with python GenTexture.py"):
        gentypes.load_generator(TexVS(tmp_path), 9, size=64)


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "argv, message",
    [
        (["/no/such/video.mp4"], "video not found"),
        (["--epochs", "-1"], "need --epochs >= 0"),
        (["--exclude", "-1"], "need --exclude auto or a number of rows >= 0, got '-1'"),
        (["--exclude", "some"], "need --exclude auto or a number of rows >= 0, got 'some'"),
        (["--ref_k", "0"], "--ref_k >= 1"),
        (["--lambda_ssim", "-1"], "--lambda_ssim"),
        (["--lambda_mask_bg", "-0.5"], "--lambda_mask(_bg)"),
        (["--force", "--resume"], "contradict each other"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(GenTexture.main, argv)
    assert e.value.code != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("error:")


@pytest.mark.slow
def test_cli_bad_input_as_a_user_runs_it(tmp_path):
    r = run_script("GenTexture.py", tmp_path / "missing.mp4", timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "video not found" in lines[0]


# --------------------------------------------------------------------------- building on gen_type 3 (--base)

BASE_UNET = {"size": S, "in_ch": 3, "out_ch": 3, "ch": [8, 16], "n_res": 1, "attn": False, "ps": 2}


def tiny_base():
    """A tiny gen_type 3 U-Net in eval mode (random weights; BatchNorm statistics not the identity, so that eval and
    train mode differ: a test sees which one the base runs in)."""
    from deepdance.networks import UNet

    torch.manual_seed(3)
    net = UNet(**BASE_UNET)
    for name, t in net.state_dict().items():
        if name.endswith("running_mean"):
            t.uniform_(-0.5, 0.5)
    return net.eval()


def save_vanilla(vs, net, **data):
    """net as vs's gen_type 3 best.pth (data: fingerprint entries to change)."""
    from deepdance import checkpoints, vanilla

    fingerprint = {**training_data.data_fingerprint(vs, vs.split()), **data}
    ckpt = {"format": vanilla.CKPT_FORMAT, "gen_type": 3, "config": {"size": S}, "model_args": BASE_UNET,
            "model": net.state_dict(), "epoch": 4, "val": {"box_ssim": 0.5}, "data": fingerprint}  # fmt: skip
    path = gentypes.checkpoint_dir(vs, 3, S) / "best.pth"
    checkpoints.save_checkpoint(ckpt, path)
    return path


def test_the_base_is_gen3s_frame_frozen_and_corrected(one_thread):
    base = tiny_base()
    args = {**TINY, "unet": {**TINY["unet"], "in_ch": recipes.TEXTURE_IN_CH + 3}, "base": BASE_UNET}
    net = texture.TextureNet(**args)
    net.base.load_state_dict(base.state_dict())
    net.train()
    assert not net.base.training and not any(p.requires_grad for p in net.base.parameters())
    query = torch.rand(2, 3, S, S) * 2 - 1
    x = torch.cat([query, torch.rand(2, 8, S, S) * 2 - 1], 1)
    with torch.no_grad():
        expected = base(query).clamp(-1, 1)
    net.unet = FixedUNet(mask=0.0, colour=0.0)  # mask 0, no correction: gen_type 3's frame itself
    torch.testing.assert_close(net(x), expected)
    net.unet = FixedUNet(mask=0.0, colour=0.25)  # a correction is added to it
    torch.testing.assert_close(net(x), (expected + 0.25).clamp(-1, 1))


def test_training_on_the_base_keeps_it_and_loads_it(tmp_path, one_thread, capsys):
    vs = TexVS(tmp_path, n=40)
    with pytest.raises(UserError, match=r"--base vanilla: no gen_type 3 checkpoint .*python GenVanillaNN"):
        texture.train(vs, tiny_config(base="vanilla"), verbose=False)
    base = tiny_base()
    path = save_vanilla(vs, base)
    summary = texture.train(vs, tiny_config(), verbose=True)  # "auto": the base is there
    assert "on gen_type 3's frame" in capsys.readouterr().out
    ckpt = torch.load(Path(summary["out"]) / "best.pth", map_location="cpu", weights_only=True)
    assert ckpt["model_args"]["base"] == BASE_UNET and ckpt["base_from"]["path"] == str(path)
    for name, t in base.state_dict().items():  # frozen: its weights and statistics are gen_type 3's, unchanged
        torch.testing.assert_close(ckpt["model"][f"base.{name}"], t, rtol=0, atol=0)
    gen = gentypes.load_generator(vs, 9, size=S, device="cpu")
    assert gen.net.base is not None and gen.generate_batch(vs.xy[:3]).shape == (3, S, S, 3)
    summary = texture.train(vs, tiny_config(epochs=2), resume=True, verbose=False)  # resumes on the same base
    assert summary["epoch"] == 2
    # gen_type 3 trained on another split may have seen the selection or test block: not built on.
    save_vanilla(vs, base, val=[0, 5])
    out = tmp_path / "other"
    texture.train(vs, tiny_config(), out=out, verbose=True)
    assert "not building on gen_type 3: " in capsys.readouterr().out
    assert "base" not in torch.load(out / "best.pth", weights_only=True)["model_args"]
    with pytest.raises(UserError, match="another train/select/test split"):
        texture.train(vs, tiny_config(base="vanilla"), out=out, verbose=False)
    assert texture.train(vs, tiny_config(base="none"), out=tmp_path / "none", verbose=False)["epoch"] == 1


def test_reference_resampling_bicubic_keeps_more_fine_detail_and_old_models_stay_bilinear():
    """A half-pixel move: bilinear averages neighbours (the finest band drops), bicubic keeps more of it; model_args
    stored before the choice existed (no "interp") rebuild the bilinear net they were trained as."""
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.uniform(-1, 1, (1, 3, S, S)).astype(np.float32))
    ys = torch.linspace(-1 + 1 / S, 1 - 1 / S, S)
    grid = torch.stack(torch.meshgrid(ys, ys, indexing="xy"), dim=-1)[None] + 1.0 / S  # half a pixel, both axes
    inner = np.s_[..., 4:-4, 4:-4]

    def fine(x):
        return float((x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1))[inner].pow(2).mean())

    bilinear, bicubic = texture.sample(img, grid, "bilinear"), texture.sample(img, grid, "bicubic")
    assert 1.5 * fine(bilinear) < fine(bicubic) < fine(img)
    old = {k: v for k, v in TINY.items() if k != "interp"}
    assert texture.TextureNet(**old).interp == "bilinear" and texture.TextureNet(**TINY).interp == "bicubic"


def test_parts_are_the_moved_reference_and_the_mask_the_output_is_made_of(trained, one_thread):
    vs, _ = trained
    gen = gentypes.load_generator(vs, 9, size=S, device="cpu")
    query = vs.xy[vs.split().select]
    warped, mask = gen.parts(query, batch=3)
    out = gen.generate_batch(query)
    assert warped.shape == out.shape and warped.dtype == np.uint8
    assert mask.shape == out.shape[:3] and 0 <= mask.min() <= mask.max() <= 1
    np.testing.assert_allclose(mask, gen.moved(query), atol=1e-6)  # batches of 3 or all: the same
    # Where the mask is (nearly) 1 the output is the moved reference itself.
    near = mask > 0.999
    if near.any():
        assert np.abs(out[near].astype(int) - warped[near].astype(int)).max() <= 2
