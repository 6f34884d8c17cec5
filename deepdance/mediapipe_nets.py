"""Frozen, differentiable PyTorch copies of two nets that ship in the mediapipe wheel, for losses and metrics.

- `pose_net()`: BlazePose GHUM 3D "full" landmark net (`modules/pose_landmark/pose_landmark_full.tflite`).
- `selfie_net()`: MediaPipe selfie segmentation, general model
  (`modules/selfie_segmentation/selfie_segmentation.tflite`).

Both are built at run time (< 0.5 s) from the installed wheel's .tflite files, read with the TFLite flatbuffer schema
that also ships in the wheel: nothing is downloaded or cached, and no package beyond mediapipe==0.10.21 is needed.
Their forward takes the project's frames, `(B, 3, H, W)` BGR in [-1, 1], and returns a dict of named outputs plus
any intermediate feature maps ("taps") asked for by name; when only taps are wanted, the graph stops at the last one.

The weights are non-persistent buffers: the modules have no parameters (an optimiser never sees them), add nothing to a
checkpoint's state_dict, and follow `.to(device)` / `.double()`. Each builder call returns a new module (the parsed
graph is cached per process), so moving or casting one never affects another caller's.

    net = pose_net()
    out = net(frames, taps=("add_1", "add_5"))  # landmarks, flag, mask, ... + two feature maps
    feats = net(frames, taps=("add_1",), outputs=False, size=None)  # features only, at the frame's own size
"""

import functools
import hashlib
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deepdance.cli import UserError

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEDIAPIPE_VERSION = "0.10.21"
# Path inside the mediapipe package, and the sha256 of the file that mediapipe==0.10.21's wheel ships.
POSE_FILE = (
    "modules/pose_landmark/pose_landmark_full.tflite",
    "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
)
SELFIE_FILE = (
    "modules/selfie_segmentation/selfie_segmentation.tflite",
    "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
)
SCHEMA_FILE = "tasks/metadata/schema_py_generated.py"
NATIVE_SIZE = 256  # both nets' input side

# Feature maps worth using in a perceptual loss, shallow to deep; shapes (C, H, W) for a 256 input, halve H, W for 128.
POSE_FEATURES = ("add", "add_1", "add_5", "add_8")  # 24x64², 32x32², 88x16², 144x8² (encoder blocks)
POSE_DECODER = "add_11"  # 48x64²: the heatmap decoder, pose-specific detail
SELFIE_FEATURES = ("re_lu", "add", "add_4")  # 16x128², 24x32², 32x16²

_SAME, _VALID = 0, 1  # tflite schema's Padding enum
_ACTIVATIONS = {0: lambda x: x, 1: F.relu, 2: lambda x: x.clamp(-1.0, 1.0), 3: F.relu6}  # fused activation enum


def _file_error(path, what):
    return UserError(
        f"{path} {what}: reinstall mediapipe (pip install --force-reinstall mediapipe=={MEDIAPIPE_VERSION})"
    )


def _mediapipe_dir():
    """The installed mediapipe package's folder, found without importing it (its import takes ~0.7 s)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise UserError(f"mediapipe is not installed: pip install mediapipe=={MEDIAPIPE_VERSION}")
    return Path(spec.origin).parent


def _read_checked(relpath, sha256):
    """The file's bytes, refused unless they are exactly the ones the pinned wheel ships (a changed model would
    silently change every loss value)."""
    path = _mediapipe_dir() / relpath
    try:
        data = path.read_bytes()
    except OSError:
        raise _file_error(path, "is missing") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise _file_error(path, f"has changed (not the sha256 of mediapipe=={MEDIAPIPE_VERSION}'s file)")
    return data


@functools.cache
def _schema():
    """mediapipe's generated TFLite schema module, loaded from its file: importing it the normal way would import all
    of mediapipe (C++ bindings, protobuf), which a training process does not need."""
    path = _mediapipe_dir() / SCHEMA_FILE
    if not path.exists():
        raise _file_error(path, "is missing")
    spec = importlib.util.spec_from_file_location("_deepdance_tflite_schema", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------------------
# Parsing: the tflite graph -> a list of steps on NCHW activations, with constants already in torch's layout.


@dataclass(frozen=True)
class _Step:
    kind: str  # the runner, a key of _RUN
    inputs: tuple  # tensor indices of the activations it reads
    consts: tuple  # names of the weight buffers it reads
    output: int  # tensor index it writes
    opts: dict = field(default_factory=dict)


@dataclass
class _Plan:
    steps: list
    weights: dict  # buffer name -> float32 array in torch layout
    names: dict  # tap name (short and full) -> tensor index
    short: dict  # tensor index -> its short name
    shapes: dict  # tensor index -> native NHWC shape
    input: int
    outputs: dict  # graph output name -> tensor index


def _short_name(name):
    """A readable tap name: the pose net's tensors carry every fused layer's name ('.../re_lu_43/Relu6;.../add_12/add'),
    of which the residual 'add_N' or else the first layer identifies the block; the selfie net's are short already."""
    parts = name.split(";")
    for part in parts:
        match = re.fullmatch(r"model_1/model/(add(?:_\d+)?)/add", part)
        if match:
            return match.group(1)
    match = re.match(r"model_1/model/([^/]+)/", parts[0])
    return (match.group(1) if match else parts[0]).removesuffix("__xeno_compat__1")


def _tensor_values(schema, model, tensor):
    """A constant tensor's values as numpy (None for an activation)."""
    buf = model.buffers[tensor.buffer]
    if buf.data is None or len(buf.data) == 0:
        if getattr(buf, "offset", 0) > 1:  # weights stored outside the flatbuffer (> 2 GB models): not these nets
            raise NotImplementedError("tflite buffers stored by offset")
        return None
    dtypes = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16}
    dtypes |= {schema.TensorType.INT32: np.int32, schema.TensorType.INT64: np.int64}
    if tensor.type not in dtypes:
        raise NotImplementedError(f"tflite constant of TensorType {tensor.type}")
    raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
    return np.frombuffer(raw, dtype=dtypes[tensor.type]).reshape(tensor.shape).copy()


def _parse(data):
    """The model's operators as steps; fp16 weights behind DEQUANTIZE are folded into fp32 constants here."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    if len(model.subgraphs) != 1:
        raise NotImplementedError("tflite models with several subgraphs")
    graph = model.subgraphs[0]
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    consts = {i: v for i, t in enumerate(graph.tensors) if (v := _tensor_values(schema, model, t)) is not None}
    plan = _Plan([], {}, {}, {}, {i: tuple(t.shape) for i, t in enumerate(graph.tensors)}, graph.inputs[0], {})
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        kind = op_names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        if kind == "CUSTOM":
            kind = code.customCode.decode()
        if kind == "DEQUANTIZE" and op.inputs[0] in consts:
            consts[op.outputs[0]] = consts[op.inputs[0]].astype(np.float32)
            continue
        if kind not in _CONVERT:
            raise NotImplementedError(f"tflite op {kind} (not used by the pose landmark or selfie nets)")
        ins = [i for i in op.inputs if i >= 0]
        runner, opts, weights = _CONVERT[kind](op, [consts.get(i) for i in ins], plan.shapes[ins[0]])
        names = tuple(f"w{index}_{k}" for k in range(len(weights)))
        plan.weights.update(zip(names, weights, strict=True))
        plan.steps.append(_Step(runner, tuple(i for i in ins if i not in consts), names, op.outputs[0], opts))
    for i, tensor in enumerate(graph.tensors):
        if i not in consts:
            full = tensor.name.decode()
            plan.names[full] = i
            short = _short_name(full)
            if plan.names.setdefault(short, i) == i:
                plan.short[i] = short
    plan.outputs = {graph.tensors[i].name.decode(): i for i in graph.outputs}
    return plan


def _conv_opts(o, act=True):
    opts = {"stride": (o.strideH, o.strideW), "same": o.padding == _SAME}
    if hasattr(o, "dilationHFactor"):
        opts["dilation"] = (o.dilationHFactor, o.dilationWFactor)
    if act:
        opts["act"] = o.fusedActivationFunction
    return opts


def _bias(consts, n):
    return consts[2] if len(consts) > 2 and consts[2] is not None else np.zeros(n, np.float32)


def _convert_conv(op, consts, in_shape):
    w = consts[1].transpose(0, 3, 1, 2)  # OHWI -> OIHW
    return "conv", _conv_opts(op.builtinOptions) | {"groups": 1}, [w, _bias(consts, w.shape[0])]


def _convert_depthwise(op, consts, in_shape):
    w = consts[1].transpose(3, 0, 1, 2)  # 1HW(C*m) -> (C*m)1HW, one group per input channel
    return "conv", _conv_opts(op.builtinOptions) | {"groups": in_shape[-1]}, [w, _bias(consts, w.shape[0])]


def _convert_transpose_bias(op, consts, in_shape):
    """mediapipe's custom op: TfLiteTransposeConvParams {padding (1 SAME, 2 VALID), stride_w, stride_h} as int32."""
    padding, stride_w, stride_h = np.frombuffer(np.asarray(op.customOptions, np.uint8).tobytes()[:12], "<i4")
    w = consts[1].transpose(3, 0, 1, 2)  # OHWI -> IOHW, conv_transpose2d's layout
    opts = {"stride": (int(stride_h), int(stride_w)), "same": int(padding) == 1}
    return "transpose_conv", opts, [w, _bias(consts, w.shape[1])]


def _convert_binary(kind):
    def convert(op, consts, in_shape):
        weights = []
        for c in consts:  # a constant operand, broadcast NHWC -> NCHW
            if c is not None:
                weights.append(c.transpose(0, 3, 1, 2) if c.ndim == 4 else c.reshape(1, -1, 1, 1) if c.ndim else c)
        act = op.builtinOptions.fusedActivationFunction if op.builtinOptions is not None else 0
        return kind, {"act": act}, [w.astype(np.float32) for w in weights]

    return convert


def _convert_pad(op, consts, in_shape):
    (n0, n1), (h0, h1), (w0, w1), (c0, c1) = consts[1].tolist()
    if n0 or n1:
        raise NotImplementedError("PAD on the batch axis")
    return "pad", {"pads": (w0, w1, h0, h1, c0, c1)}, []


def _convert_resize(op, consts, in_shape):
    """The target size is a constant of the native graph: kept as a scale, so the net runs at any input size."""
    o = op.builtinOptions
    if not (o.alignCorners or o.halfPixelCenters):
        raise NotImplementedError("RESIZE_BILINEAR without half_pixel_centers or align_corners")
    out_h, out_w = consts[1].tolist()
    return "resize", {"scale": (out_h / in_shape[1], out_w / in_shape[2]), "align_corners": bool(o.alignCorners)}, []


def _convert_pool(kind):
    def convert(op, consts, in_shape):
        o = op.builtinOptions
        kernel = (o.filterHeight, o.filterWidth)
        if kind == "avg_pool" and kernel == tuple(in_shape[1:3]) and o.padding == _VALID:
            # The selfie net's squeeze-and-excitation: a whole-map average at 256, kept so at any input size.
            return "mean", {"act": o.fusedActivationFunction}, []
        return kind, _conv_opts(o) | {"kernel": kernel}, []

    return convert


def _convert_reshape(op, consts, in_shape):
    o = op.builtinOptions
    shape = consts[1].tolist() if len(consts) > 1 and consts[1] is not None else list(o.newShape)
    return "reshape", {"shape": tuple(shape)}, []


def _convert_unary(kind):
    return lambda op, consts, in_shape: (kind, {}, [])


_CONVERT = {
    "CONV_2D": _convert_conv,
    "DEPTHWISE_CONV_2D": _convert_depthwise,
    "Convolution2DTransposeBias": _convert_transpose_bias,
    "ADD": _convert_binary("add"),
    "MUL": _convert_binary("mul"),
    "PAD": _convert_pad,
    "RESIZE_BILINEAR": _convert_resize,
    "MAX_POOL_2D": _convert_pool("max_pool"),
    "AVERAGE_POOL_2D": _convert_pool("avg_pool"),
    "RESHAPE": _convert_reshape,
    "LOGISTIC": _convert_unary("sigmoid"),
    "HARD_SWISH": _convert_unary("hardswish"),
    "RELU": _convert_unary("relu"),
    "RELU6": _convert_unary("relu6"),
}


# ---------------------------------------------------------------------------------------------------------------------
# Running: one function per step kind, on NCHW tensors.


def _same_amounts(size, kernel, stride, dilation=1):
    """TF 'SAME' padding of one axis: (before, after); the extra pixel of an odd total goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _same_pad(x, kernel, stride, dilation, *, value=0.0):
    """x padded as TF would, and the symmetric padding to hand the torch op (asymmetric padding is done here)."""
    (h0, h1), (w0, w1) = (_same_amounts(x.shape[-2 + a], kernel[a], stride[a], dilation[a]) for a in (0, 1))
    if h0 == h1 and w0 == w1:
        return x, (h0, w0)
    return F.pad(x, (w0, w1, h0, h1), value=value), (0, 0)


def _run_conv(xs, ws, *, stride, dilation, same, act, groups):
    x, pad = _same_pad(xs[0], ws[0].shape[-2:], stride, dilation) if same else (xs[0], (0, 0))
    return _ACTIVATIONS[act](F.conv2d(x, ws[0], ws[1], stride, pad, dilation, groups))


def _run_transpose_conv(xs, ws, *, stride, same):
    """conv_transpose2d at full size, then cropped to TF's output size (SAME: in * stride)."""
    y = F.conv_transpose2d(xs[0], ws[0], ws[1], stride)
    crops = []
    for a in (0, 1):
        size, k = xs[0].shape[2 + a], ws[0].shape[2 + a]
        out = size * stride[a] if same else (size - 1) * stride[a] + k
        crops.append(((size - 1) * stride[a] + k - out) // 2)
        crops.append(out)
    return y[:, :, crops[0] : crops[0] + crops[1], crops[2] : crops[2] + crops[3]]


def _run_binary(op):
    def run(xs, ws, *, act):
        a, b = (list(xs) + list(ws))[:2]
        return _ACTIVATIONS[act](op(a, b))

    return run


def _run_max_pool(xs, ws, *, kernel, stride, same, act):
    x, pad = _same_pad(xs[0], kernel, stride, (1, 1), value=-torch.inf) if same else (xs[0], (0, 0))
    return _ACTIVATIONS[act](F.max_pool2d(x, kernel, stride, pad))  # its own padding is -inf too


def _run_avg_pool(xs, ws, *, kernel, stride, same, act):
    """TF's SAME pooling averages over the pixels inside the image only, also when the padding is asymmetric."""
    x = xs[0]
    if not same:
        return _ACTIVATIONS[act](F.avg_pool2d(x, kernel, stride))
    (h0, h1), (w0, w1) = (_same_amounts(x.shape[2 + a], kernel[a], stride[a]) for a in (0, 1))
    pad = (w0, w1, h0, h1)
    total = F.avg_pool2d(F.pad(x, pad), kernel, stride)
    count = F.avg_pool2d(F.pad(x.new_ones(1, 1, *x.shape[2:]), pad), kernel, stride)
    return _ACTIVATIONS[act](total / count)


def _run_resize(xs, ws, *, scale, align_corners):
    x = xs[0]
    size = (round(x.shape[2] * scale[0]), round(x.shape[3] * scale[1]))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


def _run_reshape(xs, ws, *, shape):
    """Flattening follows TF's NHWC element order; the batch axis is kept."""
    x = xs[0].permute(0, 2, 3, 1) if xs[0].dim() == 4 else xs[0]
    y = x.reshape(x.shape[0], *shape[1:])
    return y.permute(0, 3, 1, 2) if y.dim() == 4 else y


_RUN = {
    "conv": _run_conv,
    "transpose_conv": _run_transpose_conv,
    "add": _run_binary(torch.add),
    "mul": _run_binary(torch.mul),
    "pad": lambda xs, ws, *, pads: F.pad(xs[0], pads),
    "resize": _run_resize,
    "max_pool": _run_max_pool,
    "avg_pool": _run_avg_pool,
    "reshape": _run_reshape,
    "mean": lambda xs, ws, *, act: _ACTIVATIONS[act](xs[0].mean(dim=(2, 3), keepdim=True)),
    "sigmoid": lambda xs, ws: torch.sigmoid(xs[0]),
    "hardswish": lambda xs, ws: F.hardswish(xs[0]),
    "relu": lambda xs, ws: F.relu(xs[0]),
    "relu6": lambda xs, ws: F.relu6(xs[0]),
}


class TfliteNet(nn.Module):
    """One tflite graph as frozen torch ops. `forward(x, wanted)`: x (B, 3, H, W) RGB as the graph expects it (both
    nets here: [0, 1]); returns {name: tensor} for the wanted tensor names (see `taps`), running only the steps
    they depend on. 4-D tensors are NCHW."""

    def __init__(self, plan):
        super().__init__()
        self._plan = plan
        for name, value in plan.weights.items():
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value, np.float32)), persistent=False)
        self._schedules = {}

    @property
    def taps(self):
        """{short name: native (C, H, W) shape at a 256 input} of every 4-D activation, in graph order."""
        plan = self._plan
        shapes = {plan.short[s.output]: plan.shapes[s.output] for s in plan.steps if s.output in plan.short}
        return {n: (s[3], s[1], s[2]) for n, s in shapes.items() if len(s) == 4}

    def _schedule(self, wanted):
        """The steps the wanted tensors need, and for each tensor the last step that reads it (to free it early)."""
        if wanted not in self._schedules:
            need, steps = set(wanted), []
            for step in reversed(self._plan.steps):
                if step.output in need:
                    steps.append(step)
                    need.update(step.inputs)
            steps.reverse()
            last = {i: k for k, step in enumerate(steps) for i in step.inputs}
            self._schedules[wanted] = (steps, last)
        return self._schedules[wanted]

    def forward(self, x, wanted: Sequence[str]):
        try:
            ids = tuple(self._plan.names[n] for n in wanted)
        except KeyError as e:
            raise KeyError(f"no tensor {e.args[0]!r} in this net; see .taps for the names") from None
        steps, last = self._schedule(ids)
        env = {self._plan.input: x}
        for k, step in enumerate(steps):
            ws = [self._buffers[n] for n in step.consts]
            env[step.output] = _RUN[step.kind]([env[i] for i in step.inputs], ws, **step.opts)
            for i in step.inputs:
                if last[i] == k and i not in ids:
                    del env[i]
        return {n: env[i] for n, i in zip(wanted, ids, strict=True)}


_PLANS = {}


def _plan(file):
    """The parsed graph of a (path, sha256) model file; the file is checked on every call, parsed once per process."""
    relpath, sha256 = file
    data = _read_checked(relpath, sha256)
    if sha256 not in _PLANS:
        _PLANS[sha256] = _parse(data)
    return _PLANS[sha256]


# ---------------------------------------------------------------------------------------------------------------------
# The two nets in the project's convention.


def _resize(x, size):
    """Bilinear to (h, w), antialiased when shrinking (an aliased shrink would make the loss shift-sensitive)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _prepare(x, size, margin):
    """BGR [-1, 1] frame -> the nets' RGB [0, 1] input: optionally padded with black by margin x side on every side,
    then resized to size x size (None: kept). Returns it and the padding (ph, pw) in frame pixels."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected frames (B, 3, H, W), got {tuple(x.shape)}")
    ph, pw = round(margin * x.shape[2]), round(margin * x.shape[3])
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph), value=-1.0)
    x = (x.flip(1) + 1.0) * 0.5
    return (x if size is None else _resize(x, (size, size))), (ph, pw)


def _to_frame(maps, frame_hw, pad):
    """Maps over the (padded, resized) net input back onto the frame: resized to the padded frame, padding cut off."""
    (h, w), (ph, pw) = frame_hw, pad
    maps = _resize(maps, (h + 2 * ph, w + 2 * pw))
    return maps[..., ph : ph + h, pw : pw + w]


class PoseNet(nn.Module):
    """BlazePose GHUM 3D "full" landmark net (the one mediapipe's Pose runs on its crop), frozen."""

    def __init__(self, graph: TfliteNet):
        super().__init__()
        self.graph = graph

    @property
    def taps(self):
        return self.graph.taps

    def forward(self, x, *, taps: Sequence[str] = (), outputs: bool = True, size: int | None = NATIVE_SIZE, margin=0.0):
        """x: (B, 3, H, W) BGR in [-1, 1] (non-square frames are stretched).

        size: side the frame is resized to before the net; None keeps (H, W) (taps only: the heads need 256).
        margin: black border added on each side, as a fraction of the side, before resizing; BlazePose misses a person
            who fills the frame, ~0.25 fixes that. Landmarks and mask are mapped back onto the frame either way.
        Returns {tap: (B, C, h, w)} for the taps (see .taps and POSE_FEATURES) and, when outputs:
            landmarks (B, 39, 5): x, y in [0, 1] of the frame; z in the x scale (hips ~0, smaller = nearer);
                visibility and presence probabilities in [0, 1]. Indices 0..32 are mediapipe's PoseLandmark.
            flag (B,): probability that a person is there, [0, 1]; flag_logit (B,) its logit (for -log flag).
            mask (B, 1, H, W): person segmentation in [0, 1]; mask_logits (B, 1, H, W).
            heatmap (B, 39, 64, 64): landmark heatmap logits over the net's input (padded frame).
            world (B, 39, 3): metric 3-D landmarks, hip-centred.
        """
        frame_hw = tuple(x.shape[-2:])
        net_in, pad = _prepare(x, size, margin)
        if outputs and tuple(net_in.shape[-2:]) != (NATIVE_SIZE, NATIVE_SIZE):
            raise ValueError(f"the pose net's outputs need a {NATIVE_SIZE}² input: size={NATIVE_SIZE} or outputs=False")
        heads = ("Identity", "conv_poseflag", "Identity_2", "Identity_3", "Identity_4") if outputs else ()
        got = self.graph(net_in, tuple(taps) + heads)
        result = {name: got[name] for name in taps}
        if outputs:
            result |= self._outputs(got, frame_hw, pad)
        return result

    @staticmethod
    def _outputs(got, frame_hw, pad):
        (h, w), (ph, pw) = frame_hw, pad
        raw = got["Identity"].reshape(-1, 39, 5)
        x = (raw[..., 0] / NATIVE_SIZE * (w + 2 * pw) - pw) / w
        y = (raw[..., 1] / NATIVE_SIZE * (h + 2 * ph) - ph) / h
        z = raw[..., 2] / NATIVE_SIZE * (w + 2 * pw) / w
        landmarks = torch.stack([x, y, z, torch.sigmoid(raw[..., 3]), torch.sigmoid(raw[..., 4])], dim=-1)
        flag_logit = got["conv_poseflag"].reshape(-1)
        mask_logits = _to_frame(got["Identity_2"], frame_hw, pad)
        return {
            "landmarks": landmarks,
            "flag": torch.sigmoid(flag_logit),
            "flag_logit": flag_logit,
            "mask": torch.sigmoid(mask_logits),
            "mask_logits": mask_logits,
            "heatmap": got["Identity_3"],
            "world": got["Identity_4"].reshape(-1, 39, 3),
        }


class SelfieNet(nn.Module):
    """MediaPipe selfie segmentation (general, 256x256), frozen. Fully convolutional: runs at any size."""

    def __init__(self, graph: TfliteNet):
        super().__init__()
        self.graph = graph

    @property
    def taps(self):
        return self.graph.taps

    def forward(self, x, *, taps: Sequence[str] = (), outputs: bool = True, size: int | None = NATIVE_SIZE):
        """x: (B, 3, H, W) BGR in [-1, 1]; size: side it is resized to before the net (None: kept).

        Returns {tap: (B, C, h, w)} (see .taps and SELFIE_FEATURES) and, when outputs: mask (B, 1, H, W), the person
        probability in [0, 1], and mask_logits (B, 1, H, W).
        """
        frame_hw = tuple(x.shape[-2:])
        net_in, pad = _prepare(x, size, 0.0)
        got = self.graph(net_in, tuple(taps) + (("segment",) if outputs else ()))
        result = {name: got[name] for name in taps}
        if outputs:
            logits = _to_frame(got["segment"], frame_hw, pad)
            result |= {"mask": torch.sigmoid(logits), "mask_logits": logits}
        return result


def pose_net() -> PoseNet:
    """A new frozen PoseNet in eval mode (parsed once per process; the file is checked against its sha256)."""
    return PoseNet(TfliteNet(_plan(POSE_FILE))).eval()


def selfie_net() -> SelfieNet:
    """A new frozen SelfieNet in eval mode (parsed once per process; the file is checked against its sha256)."""
    return SelfieNet(TfliteNet(_plan(SELFIE_FILE))).eval()
