"""Where training runs: the device, and the processes of a torchrun launch (DistributedDataParallel).

    pick_device     "auto" -> cuda when a GPU is visible, else cpu
    Ranks           this process among torchrun's: the global batch sharded, SyncBatchNorm, gradients averaged,
                    agreement checks; rank 0 of 1 (plain `python ...`) leaves everything as it was
    setup_ranks     the process group (NCCL on CUDA, gloo on CPU) from torchrun's environment
    run_trainer     run_cli for every rank: one error line from rank 0, silence from the others

Below the trainers and the training loop; nothing here knows a network or a dataset.
"""

import hashlib
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from deepdance.cli import UserError, os_error_line, run_cli

import torch
import torch.distributed as dist
from torch.autograd.function import once_differentiable

SETUP_WAIT_S = 120  # a rank other than 0 that fails before the process group exists waits up to this long for torchrun
# to stop it (rank 0, failing the same way, says why and exits first); past it, it says its own line


class StopTogether(UserError):
    """A problem every rank stops on (Ranks.together agreed on it): rank 0 says it, the others wait until it has."""


def pick_device(name="auto"):
    """'auto' -> cuda when a GPU is visible, else cpu; UserError if an unavailable device is asked for."""
    name = str(name).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for, but no CUDA GPU is visible: use --device auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu or cuda") from None


@dataclass
class Ranks:
    """Where this process stands among torchrun's (DistributedDataParallel). One process is rank 0 of 1, and then
    every method below returns its input untouched: plain `python GenVanillaNN.py` trains exactly as it always did.

    The trainers draw the shuffling and the augmentation for the *global* batch on every rank, from the same seed,
    and each rank takes its share `shard` of it (DistributedSampler's interleaving); GenGAN's gradient-penalty mixing
    weights are drawn for the rank's share, the same count on every rank. So the RNG stays the same on all ranks,
    and a checkpoint's RNG is the run's whatever the number of processes that resumes it.
    """

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self):
        """Rank 0: the one that prints, validates, logs, plots and writes checkpoints."""
        return self.rank == 0

    @property
    def on(self):
        return self.world > 1

    @property
    def shard(self):
        """This rank's share of a global batch: items rank, rank + world, ... (a slice)."""
        return slice(self.rank, None, self.world)

    def split_batch(self, bsz, *, unit="frames", available=None):
        """The global batch of bsz training `unit`s rounded down to a multiple of the processes, each taking bsz / world
        a step; UserError when there are more processes than that (than the `available` training items, or than
        --batch gives)."""
        if bsz >= self.world:
            return bsz - bsz % self.world
        if available is not None and available < self.world:
            raise UserError(f"{self.world} processes but only {available} training {unit}: each process needs at least "
                            f"one a step; run at most {available} processes")  # fmt: skip
        raise UserError(f"{self.world} processes but a global batch of {bsz} training {unit} (--batch): each process "
                        f"needs at least one a step; use a larger --batch or at most {bsz} processes")  # fmt: skip

    def wrap(self, net):
        """The net the training steps run: itself in one process; else inside DistributedDataParallel (which averages
        gradients over the ranks) with its BatchNorm computed over the global batch (SyncBatchNorm on CUDA,
        CPUSyncBatchNorm on CPU). The BatchNorm swap keeps net's parameters and buffers, so net itself stays the one
        to validate and save (its state_dict keys have no "module." prefix)."""
        if not self.on:
            return net
        if self.device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        else:
            CPUSyncBatchNorm.convert(net)
        # forward_sync_buffers=False: no buffer broadcast before each forward (the GAN runs D several times before one
        # backward); BatchNorm's running statistics come from the global batch, so they agree anyway.
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids, forward_sync_buffers=False)

    def mean(self, t):
        """A tensor averaged over the ranks (a loss summed over this rank's steps); one process: t itself."""
        if not self.on:
            return t
        t = t.detach().clone()
        dist.all_reduce(t)
        return t / self.world

    def mean_of(self, values):
        """{name: float} averaged over the ranks in one collective (every rank has the same names, in order)."""
        if not self.on:
            return values
        t = self.mean(torch.tensor(list(values.values()), dtype=torch.float64, device=self.device))
        return dict(zip(values, t.tolist(), strict=True))

    def agree(self, value):
        """Rank 0's float on every rank: its clock decides the schedule and the end of a time-budgeted run."""
        if not self.on:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return t.item()

    @contextmanager
    def together(self):
        """A block every rank runs alike, with no collective inside (setup): a UserError or OSError on any rank stops
        all of them at its end, rank 0 saying it once (naming the rank when another one failed), instead of the
        others waiting forever for a rank that quit."""
        if not self.on:
            yield
            return
        error = None
        try:
            yield
        except UserError as e:
            error = str(e)
        except OSError as e:
            error = os_error_line(e, "cannot read or write")
        errors = [None] * self.world
        dist.all_gather_object(errors, error)
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if failed:
            r, e = failed[0]
            raise StopTogether(e if r == 0 else f"(process of rank {r}) {e}")

    def check_same_weights(self, nets, epoch):
        """UserError unless every rank holds bitwise the same weights: processes each training their own model
        (pix2pix #1705) stop at the first epoch's end instead of wasting the run."""
        if not self.on:
            return
        digests = [None] * self.world
        dist.all_gather_object(digests, weights_digest(nets))
        if len(set(digests)) > 1:
            raise UserError(f"after epoch {epoch} the {self.world} processes hold different weights: they are not "
                            "training one model (a bug, please report it); latest.pth is rank 0's")  # fmt: skip


def weights_digest(nets):
    """sha256 (hex) over the nets' (or state_dicts') parameters and buffers, bit for bit."""
    h = hashlib.sha256()
    for net in nets:
        for name, t in (net if isinstance(net, dict) else net.state_dict()).items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def setup_ranks(device="auto"):
    """This process's Ranks: under torchrun with several processes (WORLD_SIZE > 1) it joins the process group (once
    per process; NCCL on CUDA, one GPU per local rank, gloo on CPU; torchrun's rendezvous says where the others are,
    one node or many); otherwise one process on pick_device(device). UserError for a device that is not there."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device)
    if world == 1:
        return Ranks(device=device)
    if device.type == "cuda":
        per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", "1")), torch.cuda.device_count()
        if gpus < per_node:
            raise UserError(f"{per_node} processes per node but {gpus} GPUs visible: one GPU per process, so use "
                            f"--nproc_per_node {gpus} (or --device cpu)")  # fmt: skip
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():  # an hour, not the default 10-30 min: the others wait while rank 0 extracts poses
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=1))
    return Ranks(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def run_trainer(main, *, interrupted):
    """Skeleton.run_cli for a trainer script, quiet on ranks other than 0 under torchrun: they stop on the same line
    rank 0 prints (Ranks.together), on the SIGTERM torchrun sends when one process fails, or on a process group that
    broke because another process quit: one line for the user, not one traceback per process.

    A rank other than 0 never exits on a shared problem before rank 0 has printed it: torchrun would SIGTERM rank 0
    mid-sentence (tests/test_ddp.py's one-line tests). After Ranks.together they meet at a barrier once rank 0's line
    is out; before the process group exists (a --device that is not there) they wait for torchrun's SIGTERM.
    Whatever path ends main (trained already, trained, a shared stop), the ranks leave together (_leave_together)."""
    if int(os.environ.get("RANK", "0")) == 0:
        return run_cli(lambda argv: _peers_lost(main, argv), interrupted=interrupted, after_error=_release_others)

    def quiet(argv):
        try:
            done = main(argv)
            _leave_together()
            return done
        except (UserError, OSError) as e:
            _wait_for_rank_0(e)
            sys.exit(2)
        except KeyboardInterrupt:
            sys.exit(130)
        except (dist.DistError, RuntimeError) as e:
            if _peer_lost(e) is None:
                raise
            sys.exit(2)

    return run_cli(quiet, interrupted=interrupted)


def _leave_together():
    """Every rank meets here once main is done, then closes the process group: a rank that exits while another is
    still in a collective or tearing its connections down (rank 0 reporting "trained already") can make the
    other's gloo / NCCL abort (SIGABRT) at exit. No-op in one process."""
    if not dist.is_initialized():
        return
    try:
        dist.barrier()
    except (dist.DistError, RuntimeError):
        pass  # another rank is already gone: nobody left to wait for
    dist.destroy_process_group()


def _release_others(error):
    """Rank 0, its line printed: let the ranks waiting in _wait_for_rank_0 go (a shared stop only), and leave with
    them."""
    if isinstance(error, StopTogether):
        try:
            _leave_together()
        except KeyboardInterrupt:  # torchrun's SIGTERM once another rank exited: this line is out, all is said
            pass


def _wait_for_rank_0(error):
    """A rank other than 0 stopping on `error`: return once rank 0 has said it (see run_trainer)."""
    try:
        if isinstance(error, StopTogether) and dist.is_initialized():
            _leave_together()  # rank 0 reaches it after printing
        elif not dist.is_initialized():  # every rank checks its setup alike, so rank 0 is failing too: torchrun
            time.sleep(SETUP_WAIT_S)  # SIGTERMs this one once rank 0 exits; if rank 0 did not fail, say it here
            line = error if isinstance(error, UserError) else os_error_line(error, "cannot read or write")
            print(f"error: (process of rank {os.environ.get('RANK')}) {line}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # torchrun's SIGTERM (run_cli's handler): rank 0 has spoken
        sys.exit(130)
    except (dist.DistError, RuntimeError):
        pass  # rank 0 is gone


# How gloo and NCCL say a collective's peer is gone (gloo raises a plain RuntimeError, not a DistError).
_PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "timed out", "Timed out",
              "communicator was aborted")  # fmt: skip


def _peer_lost(e):
    """The phrase saying another process of the group is gone, or None for any other error (a real bug: re-raised)."""
    if not dist.is_initialized():
        return None
    found = [phrase for phrase in _PEER_LOST if phrase in str(e)]
    return found[0] if found else (type(e).__name__ if isinstance(e, dist.DistError) else None)


def _peers_lost(main, argv):
    try:
        done = main(argv)
        _leave_together()
        return done
    except (dist.DistError, RuntimeError) as e:
        lost = _peer_lost(e)
        if lost is None:
            raise
        raise UserError(f"another training process stopped ({lost}), so this one cannot go on: its own message, or "
                        "torchrun's report of its exit code, says why") from None  # fmt: skip


class _SyncBatchNorm(torch.autograd.Function):
    """BatchNorm's training forward and backward over the global batch, on CPU: a few passes over x and one small
    all-reduce each way (what torch's SyncBatchNorm does with CUDA-only kernels). Statistics in float64.

    Every rank's loss depends on every rank's share of the statistics, so the input gradient uses the sums of
    dy and dy * (x - mean) over all ranks; weight and bias get this rank's share (DDP averages them).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):  # x (B, C, ...), weight and bias (C,)
        c = x.shape[1]
        n = x.numel() // c
        # This rank's mean and 1 / sqrt(var + eps) from the native kernel (stable, and 10x faster than var_mean here)
        _, mean, invstd = torch.native_batch_norm(x, None, None, None, None, True, 0.0, eps)
        mean, var = mean.double(), (invstd.double() ** -2 - eps).clamp_min(0)  # (C,), (C,)
        stats = torch.cat([n * mean, n * (var + mean**2), mean.new_full((1,), n)])  # sums of x, x^2, the count
        dist.all_reduce(stats)
        count = stats[-1]
        mean = stats[:c] / count
        var = (stats[c : 2 * c] / count - mean**2).clamp_min(0)  # biased: what BatchNorm normalises by
        invstd = torch.rsqrt(var + eps)
        w = weight.double()
        shape = [1, c] + [1] * (x.dim() - 2)
        scale, shift = (invstd * w).to(x.dtype), (bias.double() - mean * invstd * w).to(x.dtype)
        ctx.save_for_backward(x, w, mean, invstd)
        ctx.count = count
        unbiased = var * count / (count - 1)
        ctx.mark_non_differentiable(mean, unbiased)
        return torch.addcmul(shift.view(shape), x, scale.view(shape)), mean, unbiased

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _mean, _var):  # the statistics' outputs only update the running ones: no gradient
        x, w, mean, invstd = ctx.saved_tensors
        c, dims = x.shape[1], [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        sum_dy = dy.sum(dims).double()
        sum_dy_xmu = (dy * (x - mean.to(x.dtype).view(shape))).sum(dims).double()
        grad_weight, grad_bias = (sum_dy_xmu * invstd).to(x.dtype), sum_dy.to(x.dtype)  # this rank's share
        total = torch.cat([sum_dy, sum_dy_xmu])
        dist.all_reduce(total)
        mean_dy, mean_dy_xmu = total[:c] / ctx.count, total[c:] / ctx.count
        # dx = w invstd (dy - mean_dy - (x - mean) invstd^2 mean_dy_xmu) = k dy + a x + b, per channel
        k = w * invstd
        a = -k * invstd**2 * mean_dy_xmu
        b = -k * mean_dy - a * mean
        dx = torch.addcmul(torch.addcmul(b.to(x.dtype).view(shape), dy, k.to(x.dtype).view(shape)), x,
                           a.to(x.dtype).view(shape))  # fmt: skip
        return dx, grad_weight, grad_bias, None


class CPUSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch for CPU processes (gloo): torch's SyncBatchNorm runs on GPUs only, and with each
    process normalising by its own shard's statistics, N processes would train another model than one process does.
    """

    def _check_input_dim(self, x):
        if x.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2D, 3D or 4D input (got {x.dim()}D input)")

    def forward(self, x):  # (B, C), (B, C, L) or (B, C, H, W)
        if not self.training:
            return super().forward(x)
        c = x.shape[1]
        w = self.weight if self.affine else x.new_ones(c)
        b = self.bias if self.affine else x.new_zeros(c)
        y, mean, var = _SyncBatchNorm.apply(x, w, b, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.to(x.dtype), momentum)
                self.running_var.lerp_(var.to(x.dtype), momentum)  # unbiased, as BatchNorm keeps it
        return y

    @classmethod
    def convert(cls, module):
        """Swap every BatchNorm1d/2d inside module (in place) for one of these holding the same parameters and buffers:
        optimizers keep pointing at them and state_dict keys do not change."""
        for name, child in module.named_children():
            if isinstance(child, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                new = cls(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
                new.weight, new.bias = child.weight, child.bias
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
                new.train(child.training)
                setattr(module, name, new)
            else:
                cls.convert(child)
        return module


def autocast(device):
    """bf16 autocast on CUDA (tensor cores); plain fp32 on CPU, where bf16 has no fast path here (no AVX512-BF16)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
