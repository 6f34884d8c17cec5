"""Training under torchrun: DistributedDataParallel over 2 CPU processes with gloo, on the tiny synthetic
target with tiny nets at 32 px. What is checked:

- every rank ends with bitwise the same weights, and they are rank 0's checkpoint (pix2pix #1705: "training
  independently");
- 2 processes and 1 process with the same global batch and augmentation off train the same model: the same loss
  at every step (epochs of one step each) within float rounding;
- --resume across world sizes (2 -> 1 and 1 -> 2) continues where the run stopped, as an uninterrupted run would;
- GenGAN in bce, wgan-gp (double backward) and temporal modes completes an epoch under DDP;
- the scripts under torchrun: CUDA asked for and absent, or more processes than a step's frames, stop every rank
  with one `error:` line from rank 0 and no worker traceback.

The torchrun tests run this file as the workers' script (`__main__` below): one launch trains a list of jobs.
`--standalone` lets torchrun pick a free port, so parallel test runs never collide.
"""

import copy
import csv
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from deepdance import distributed, gan, trainer, training_data, vanilla
from deepdance.cli import UserError

import numpy as np
import pytest
import torch

from conftest import ROOT, FakeVS

TINY_G = {"image": {"ch": [8, 16], "n_res": 1}, "vector": {"hidden": 32, "n_blocks": 1, "ch": [16, 16, 8]}}
N_FRAMES = 40  # FakeVS: 20 training frames before the selection and test blocks and their gaps
# One step per epoch (batch 16 of 20 frames), so train_log.csv's train_loss is each step's loss.
VANILLA = {"variant": 2, "size": 32, "batch": 16, "aug_prob": 0.0, "device": "cpu", "model_args": TINY_G["image"]}
GANS = {
    "bce": {"mode": "bce", "input": "image"},
    "wgan-gp": {"mode": "wgan-gp", "input": "vector"},
    "temporal": {"mode": "bce", "input": "image", "temporal": True},
}
pytestmark = pytest.mark.usefixtures("one_thread")


@contextmanager
def torch_threads(n):
    """one_thread for a module-scoped fixture (function-scoped fixtures cannot wrap it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_job(job):
    """Train one job ({"kind": "vanilla" | "gan", "cfg": {...}, "out": folder, "resume": bool}) in this process."""
    trainer, config = (gan, gan.GANConfig) if job["kind"] == "gan" else (vanilla, vanilla.VanillaConfig)
    out = Path(job["out"])
    vs = FakeVS(out.parent, n=N_FRAMES)
    return trainer.train(vs, config(**job["cfg"]), out=out, resume=job.get("resume", False), verbose=False)


def gan_job(tmp_path, name):
    cfg = {**GANS[name], "size": 32, "epochs": 1, "batch": 8, "device": "cpu", "init_from_vanilla": False,
           "d_args": {"ndf": 8}, "g_args": TINY_G[GANS[name]["input"]]}  # fmt: skip
    return {"kind": "gan", "cfg": cfg, "out": str(tmp_path / f"gan-{name}")}


def torchrun(tmp_path, jobs, nproc=2):
    """Run the jobs in one torchrun launch of nproc CPU processes -> per rank, each job's weights_sha256."""
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps(jobs))
    proc = launch(tmp_path, [str(Path(__file__).resolve()), str(spec)], nproc=nproc)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(nproc)]


def launch(tmp_path, args, nproc=2, timeout=300):
    """python -m torch.distributed.run --standalone (a free port) with nproc processes, one thread each."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    # The workers run this file as a script: the package is found from the repository's root.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def log(out):
    with open(Path(out) / "train_log.csv", newline="") as f:
        return list(csv.DictReader(f))


def column(rows, name):
    return np.array([float(r[name]) for r in rows])


def checkpoint(out):
    return torch.load(Path(out) / "latest.pth", map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------- in-process pieces


def test_one_process_changes_nothing():
    """Plain `python GenVanillaNN.py` never touches torch.distributed: every Ranks method hands back its input."""
    ranks = distributed.setup_ranks("cpu")
    assert (ranks.rank, ranks.world, ranks.main, ranks.on) == (0, 1, True, False)
    t, net = torch.randn(3), torch.nn.Linear(2, 2)
    assert ranks.mean(t) is t and ranks.agree(1.5) == 1.5 and ranks.wrap(net) is net
    assert ranks.mean_of({"b": 1.0, "a": 2.0}) == {"b": 1.0, "a": 2.0}
    assert torch.arange(5)[ranks.shard].tolist() == [0, 1, 2, 3, 4]
    with ranks.together():
        pass
    ranks.check_same_weights([net], 1)
    assert not torch.distributed.is_initialized()


def test_global_batch_is_shared_out_or_refused():
    ranks = distributed.Ranks(rank=1, world=3)
    assert ranks.split_batch(32) == 30 and ranks.split_batch(3) == 3  # 10 frames a process, not 11 / 11 / 10
    assert torch.arange(9)[ranks.shard].tolist() == [1, 4, 7]  # DistributedSampler's interleaving
    with pytest.raises(UserError, match="3 processes but a global batch of 2 training frames"):
        ranks.split_batch(2)
    with pytest.raises(UserError, match="3 processes but only 2 training windows"):
        ranks.split_batch(2, unit="windows", available=2)


def test_augmentation_is_drawn_for_the_global_batch():
    """Each rank's share of an augmented global batch is exactly the one process's (same draws, same RNG after)."""
    cfg = trainer.RunConfig(aug_prob=0.7)
    xy = torch.rand(8, 1, 13, 2) * 0.5 + 0.25
    real = torch.rand(8, 3, 16, 16)
    whole = real.clone()
    g = torch.Generator().manual_seed(3)
    xy_all, on_all = training_data.augment(xy, whole, cfg, g)
    for rank in range(2):
        shard = distributed.Ranks(rank=rank, world=2).shard
        mine = real[shard].clone()
        g_rank = torch.Generator().manual_seed(3)
        xy_mine, on_mine = training_data.augment(xy, mine, cfg, g_rank, shard=shard)
        torch.testing.assert_close(xy_mine, xy_all[shard], rtol=0, atol=0)
        assert torch.equal(on_mine, on_all[shard]) and torch.equal(mine, whole[shard])
        assert torch.equal(g_rank.get_state(), g.get_state())


def test_cpu_sync_batchnorm_is_batchnorm_in_a_world_of_one(tmp_path):
    """CPUSyncBatchNorm (one all-reduce per layer) computes what BatchNorm does: outputs, gradients, running stats."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        ref = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                  torch.nn.Linear(4 * 36, 8), torch.nn.BatchNorm1d(8))  # fmt: skip
        with torch.no_grad():
            ref[1].weight.uniform_(0.5, 1.5), ref[1].bias.uniform_(-0.5, 0.5)
        sync = distributed.CPUSyncBatchNorm.convert(copy.deepcopy(ref))
        assert isinstance(sync[1], distributed.CPUSyncBatchNorm) and isinstance(sync[4], distributed.CPUSyncBatchNorm)
        assert sync.state_dict().keys() == ref.state_dict().keys()
        x = torch.randn(6, 3, 8, 8) * 3 + 1
        for net in (ref, sync):
            net(x).square().mean().backward()
        for (name, a), b in zip(ref.named_parameters(), sync.parameters(), strict=True):
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)
        for (name, a), b in zip(ref.state_dict().items(), sync.state_dict().values(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
        ref.eval(), sync.eval()
        torch.testing.assert_close(sync(x), ref(x))
    finally:
        torch.distributed.destroy_process_group()


# --------------------------------------------------------------------------- 2 processes (torchrun)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One torchrun launch of 2 processes and the 1-process runs around it (folders by name):

    one      1 process: 2 epochs, then --resume to 4 (the reference)
    two      2 processes: 2 epochs (in the launch), then --resume on 1 process to 4
    one-two  1 process: 2 epochs (a copy of one's), then --resume on 2 processes to 4 (in the launch)
    gan-*    2 processes: 1 epoch of GenGAN in bce, wgan-gp and temporal modes (in the launch)
    budget   2 processes: a 2-second time budget (in the launch)
    """
    tmp = tmp_path_factory.mktemp("ddp")
    vanilla = {"kind": "vanilla", "cfg": {**VANILLA, "epochs": 2}}
    to_4 = {"cfg": {**VANILLA, "epochs": 4}, "resume": True}
    one, two, one_two = ({**vanilla, "out": str(tmp / name)} for name in ("one", "two", "one-two"))
    with torch_threads(1):
        run_job(one)
        shutil.copytree(one["out"], one_two["out"])
        run_job({**one, **to_4})
        gans = [gan_job(tmp, name) for name in GANS]
        budget = {"kind": "vanilla", "cfg": {**VANILLA, "time_budget": 2 / 60}, "out": str(tmp / "budget")}
        rank0, rank1 = torchrun(tmp, [two, {**one_two, **to_4}, *gans, budget])
        two_weights = checkpoint(two["out"])  # before the 1-process resume below replaces it
        run_job({**two, **to_4})
    return {"tmp": tmp, "rank0": rank0, "rank1": rank1, "two_after_2": two_weights, "gans": gans}


@pytest.mark.slow
def test_all_ranks_end_with_rank_0s_weights(runs):
    """Bitwise the same weights on both ranks after every job, and they are what rank 0 saved."""
    assert runs["rank0"] == runs["rank1"]
    ckpt = runs["two_after_2"]
    assert runs["rank0"][0] == distributed.weights_digest([ckpt["model"]])
    assert ckpt["config"]["world_size"] == 2 and ckpt["epoch"] == 2 and ckpt["step"] == 2


@pytest.mark.slow
def test_two_processes_train_the_one_process_model(runs):
    """2 processes, global batch 16 (8 each): every step's loss and the validation those of 1 process, batch 16
    (steps 1-2: 2 processes from scratch; 3-4: resumed on 1)."""
    ref, two = log(runs["tmp"] / "one"), log(runs["tmp"] / "two")
    assert [int(r["epoch"]) for r in two] == [1, 2, 3, 4]
    np.testing.assert_allclose(column(two, "train_loss"), column(ref, "train_loss"), rtol=2e-4)
    np.testing.assert_allclose(column(two, "val_l1"), column(ref, "val_l1"), rtol=2e-3)
    # Weights within one AdamW step (lr 2e-3): where a gradient is float noise, Adam's normalised step moves a
    # weight by up to lr whichever way the rounding went (the losses above agree to 2e-4).
    ref_w = checkpoint(runs["tmp"] / "one")["model"]
    for name, w in checkpoint(runs["tmp"] / "two")["model"].items():
        torch.testing.assert_close(w, ref_w[name], rtol=0, atol=vanilla.LR, msg=name)


@pytest.mark.slow
def test_resume_across_world_sizes_continues_where_it_stopped(runs):
    """2 -> 1 and 1 -> 2 processes: epochs 3 and 4 continue the run (its log, schedule, optimizer, RNG) as one
    process resuming it does, and the checkpoint says which world size wrote it."""
    ref = column(log(runs["tmp"] / "one"), "train_loss")
    for name, world in (("two", 1), ("one-two", 2)):
        rows = log(runs["tmp"] / name)
        assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4] and [int(r["step"]) for r in rows] == [1, 2, 3, 4]
        np.testing.assert_allclose(column(rows, "train_loss"), ref, rtol=2e-4, err_msg=name)
        assert checkpoint(runs["tmp"] / name)["config"]["world_size"] == world


@pytest.mark.slow
def test_gan_modes_complete_an_epoch_under_ddp(runs):
    """bce, wgan-gp (the gradient penalty's double backward through DDP) and temporal (netD_T): an epoch of 2
    global steps each, finite losses, validated and saved once by rank 0, identical weights on both ranks."""
    for job, digest in zip(runs["gans"], runs["rank0"][2:5], strict=True):
        ckpt = checkpoint(job["out"])
        nets = [ckpt[k] for k in ("model", "netD", "netD_T") if ckpt[k] is not None]
        assert ckpt["epoch"] == 1 and ckpt["config"]["world_size"] == 2 and distributed.weights_digest(nets) == digest
        (row,) = log(job["out"])
        assert int(row["step"]) == 2 and np.isfinite(float(row["loss_D"])) and float(row["val_box_ssim"]) > 0
    gans = dict(zip(GANS, runs["gans"], strict=True))
    assert checkpoint(gans["temporal"]["out"])["netD_T"] is not None and "loss_D_GP" in log(gans["wgan-gp"]["out"])[0]


@pytest.mark.slow
def test_a_time_budget_ends_every_rank_at_the_same_step(runs):
    """With --time_budget the schedule and the end follow rank 0's clock on every rank: the run ended (no rank left
    waiting for another's step) with the same weights on both ranks, one global step per epoch as planned."""
    rows, ckpt = log(runs["tmp"] / "budget"), checkpoint(runs["tmp"] / "budget")
    assert runs["rank0"][5] == runs["rank1"][5] == distributed.weights_digest([ckpt["model"]])
    assert ckpt["schedule"]["budget_s"] == 2.0 and [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))


@pytest.mark.slow
def test_cuda_asked_for_and_absent_is_one_line_from_rank_0(tmp_path):
    proc = launch(tmp_path, ["GenGAN.py", "--device", "cuda"], timeout=120)
    assert_one_error_line(proc, "--device cuda asked for, but no CUDA GPU is visible")


@pytest.mark.slow
def test_more_processes_than_a_step_has_frames_is_one_line_from_rank_0(tmp_path):
    proc = launch(tmp_path, ["GenVanillaNN.py", "--batch", "2"], nproc=3, timeout=120)
    assert_one_error_line(proc, "3 processes but a global batch of 2 training frames")


def assert_one_error_line(proc, text):
    """Every rank stopped (torchrun failed), one `error:` line (rank 0's), no worker traceback. torchrun's own
    ChildFailedError report follows it: the launcher's, outside the workers."""
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], proc.stderr[-3000:]
    assert str(ROOT / "GenGAN.py") not in proc.stderr and str(ROOT / "GenVanillaNN.py") not in proc.stderr
    assert "interrupted" not in proc.stderr


# --------------------------------------------------------------------------- the workers torchrun starts


def _worker(spec):
    """Run the jobs listed in spec (JSON); write this rank's weights digests next to it as rank<N>.json."""
    import conftest

    try:
        results = [run_job(job)["weights_sha256"] for job in json.loads(Path(spec).read_text())]
        Path(spec).with_name(f"rank{os.environ['RANK']}.json").write_text(json.dumps(results))
    finally:
        shutil.rmtree(conftest._DATA, ignore_errors=True)  # the data folder importing conftest made for this process


if __name__ == "__main__":
    torch.set_num_threads(1)
    _worker(sys.argv[1])
