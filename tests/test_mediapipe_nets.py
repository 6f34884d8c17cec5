"""deepdance.mediapipe_nets: the torch copies of the wheel's pose landmark and selfie segmentation nets against
mediapipe itself (run on the same synthetic picture), their gradients, and the error for a missing or changed file."""

import os

from deepdance import mediapipe_nets as mn
from deepdance.cli import UserError

import cv2
import numpy as np
import pytest
import torch

POSE_OUTPUTS = ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4")  # the tflite graph's, in order


def _figure():
    """A 256x256 RGB uint8 picture of a crude standing person (head, torso, limbs) on a noisy gradient: BlazePose's
    flag and the selfie mask both find a person in it, so the comparison covers the nets' real working range."""
    rng = np.random.default_rng(0)
    img = np.repeat(np.linspace(60, 200, 256)[:, None, None], 256, axis=1).repeat(3, axis=2)
    img = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
    cloth = (40, 80, 180)
    cv2.circle(img, (128, 50), 18, (150, 170, 220), -1)
    cv2.rectangle(img, (105, 72), (151, 150), cloth, -1)
    for a, b in [((105, 80), (70, 130)), ((151, 80), (186, 130)), ((115, 150), (100, 235)), ((141, 150), (156, 235))]:
        cv2.line(img, a, b, cloth, 14)
    return img


def _frame(rgb):
    """The project's convention: (1, 3, H, W) BGR in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1])).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def _pose_reference(rgb):
    """The pose landmark model's five raw outputs from mediapipe's own TFLite runtime, fed the 256x256 picture as is
    (ImageToTensor at the input's own size is the identity): a graph of mediapipe's calculators, no extra package."""
    import mediapipe as mp
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import packet_creator, packet_getter
    from mediapipe.python._framework_bindings import calculator_graph, image_frame

    model = os.path.join(os.path.dirname(mp.__file__), mn.POSE_FILE[0])
    ranges = " ".join(f"ranges {{ begin: {i} end: {i + 1} }}" for i in range(5))
    text = f"""
        input_stream: "image"
        node {{ calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:in"
          options {{ [mediapipe.ImageToTensorCalculatorOptions.ext] {{ output_tensor_width: 256
            output_tensor_height: 256 output_tensor_float_range {{ min: 0.0 max: 1.0 }} }} }} }}
        node {{ calculator: "InferenceCalculator" input_stream: "TENSORS:in" output_stream: "TENSORS:out"
          options {{ [mediapipe.InferenceCalculatorOptions.ext] {{ model_path: "{model}"
            delegate {{ tflite {{}} }} }} }} }}
        node {{ calculator: "SplitTensorVectorCalculator" input_stream: "out"
          {" ".join(f'output_stream: "t{i}"' for i in range(5))}
          options {{ [mediapipe.SplitVectorCalculatorOptions.ext] {{ {ranges} }} }} }}
    """ + "".join(
        f'node {{ calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:t{i}" output_stream: "FLOATS:f{i}" }}'
        for i in range(5)
    )
    config = text_format.Parse(
        text + "".join(f' output_stream: "f{i}"' for i in range(5)), calculator_pb2.CalculatorGraphConfig()
    )
    graph = calculator_graph.CalculatorGraph(graph_config=config)
    got = {}
    for i in range(5):
        graph.observe_output_stream(
            f"f{i}", lambda name, p: got.__setitem__(name, np.array(packet_getter.get_float_list(p)))
        )
    graph.start_run()
    frame = packet_creator.create_image_frame(image_format=image_frame.ImageFormat.SRGB, data=rgb)
    graph.add_packet_to_input_stream("image", frame.at(0))
    graph.close()
    return {name: got[f"f{i}"] for i, name in enumerate(POSE_OUTPUTS)}


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.clip(v, -80, 80)))


@pytest.fixture(scope="module")
def pose():
    return mn.pose_net()


def test_pose_net_matches_mediapipe(pose):
    rgb = _figure()
    ref = _pose_reference(rgb)
    with torch.no_grad():  # a second, blank picture in the batch: the rows must not mix (the heads flatten)
        out = {k: v[0].numpy() for k, v in pose(torch.cat([_frame(rgb), torch.zeros(1, 3, 256, 256)])).items()}
    raw = ref["Identity"].reshape(39, 5)
    assert ref["Identity_1"][0] > 0.9, "the synthetic figure should read as a person"
    np.testing.assert_allclose(out["landmarks"][:, :2] * 256, raw[:, :2], atol=0.01)  # px of the 256 input
    np.testing.assert_allclose(out["landmarks"][:, 2] * 256, raw[:, 2], atol=0.02)
    np.testing.assert_allclose(out["landmarks"][:, 3:], _sigmoid(raw[:, 3:]), atol=1e-4)
    np.testing.assert_allclose(out["flag"], ref["Identity_1"][0], atol=1e-5)
    np.testing.assert_allclose(out["mask"][0], _sigmoid(ref["Identity_2"].reshape(256, 256)), atol=0.01)
    np.testing.assert_allclose(out["heatmap"].transpose(1, 2, 0).ravel(), ref["Identity_3"], atol=0.005)
    np.testing.assert_allclose(out["world"].ravel(), ref["Identity_4"], atol=5e-4)


def test_selfie_net_matches_mediapipe():
    import mediapipe as mp

    rgb = _figure()
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        ref = seg.process(rgb).segmentation_mask
    with torch.no_grad():
        mask = mn.selfie_net()(_frame(rgb))["mask"][0, 0].numpy()
    assert (ref > 0.5).mean() > 0.05, "the synthetic figure should be segmented"
    np.testing.assert_allclose(mask, ref, atol=5e-3)
    assert ((mask > 0.5) == (ref > 0.5)).mean() > 0.999


def test_margin_maps_outputs_back_onto_the_frame(pose):
    """margin=0.25 on a 256 frame is the net run on that frame with 64 black pixels added on each side: its landmarks
    and mask, mapped back, must be exactly those of the padded frame's, cut back to the frame."""
    x = _frame(_figure())
    with torch.no_grad():
        framed = pose(x, margin=0.25)
        padded = pose(torch.nn.functional.pad(x, (64, 64, 64, 64), value=-1.0))
    lm = padded["landmarks"].clone()
    lm[..., :3] = (lm[..., :3] * 384 - torch.tensor([64.0, 64.0, 0.0])) / 256
    torch.testing.assert_close(framed["landmarks"], lm, atol=1e-5, rtol=0)
    torch.testing.assert_close(framed["mask"], padded["mask"][..., 64:320, 64:320], atol=1e-5, rtol=0)
    with torch.no_grad():
        plain = pose(x)["landmarks"]
    assert (plain[0, 0, :2] - framed["landmarks"][0, 0, :2]).abs().max() < 0.01  # the nose is found either way


@pytest.mark.parametrize("size", [64, 128])
def test_feature_taps_at_the_frames_own_size(pose, size):
    """Taps alone run at any size (the heads, which need 256, are not computed); each halves per encoder stage."""
    x = torch.zeros(2, 3, size, size)
    with torch.no_grad():
        got = pose(x, taps=mn.POSE_FEATURES, outputs=False, size=None)
        selfie = mn.selfie_net()(x, taps=mn.SELFIE_FEATURES, outputs=False, size=None)
    assert [tuple(got[t].shape) for t in mn.POSE_FEATURES] == [
        (2, c, size // s, size // s) for c, s in [(24, 4), (32, 8), (88, 16), (144, 32)]
    ]
    assert [tuple(selfie[t].shape) for t in mn.SELFIE_FEATURES] == [
        (2, c, size // s, size // s) for c, s in [(16, 2), (24, 8), (32, 16)]
    ]
    with pytest.raises(ValueError, match="256"):
        pose(x, size=None)


def _directional_check(f, x, seed):
    """Autograd's derivative of f along a random direction against a float64 central difference. A small step: the
    ReLU6 kinks are crossed by larger ones."""
    x = x.clone().requires_grad_(True)
    f(x).backward()
    v = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(seed))
    eps = 1e-7
    with torch.no_grad():
        numeric = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    analytic = (x.grad * v).sum()
    assert torch.isfinite(x.grad).all()
    assert abs(float(analytic - numeric)) <= 1e-3 * abs(float(numeric)) + 1e-6


def test_gradients_match_finite_differences(pose):
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pose64, selfie64 = mn.pose_net().double(), mn.selfie_net().double()

    def pose_features(x):  # 32 -> 64 bilinear inside, two encoder taps, fixed weights so every channel counts
        out = pose64(x, taps=("add_1", "add_5"), outputs=False, size=64)
        return sum((v * torch.cos(torch.arange(v.numel(), dtype=v.dtype)).view(v.shape)).sum() for v in out.values())

    def selfie_all(x):  # through the squeeze-excitation, HARD_SWISH and the custom transpose conv to the mask
        out = selfie64(x, taps=("add",), size=None)
        return out["mask_logits"].pow(2).mean() + out["add"].sum()

    _directional_check(pose_features, x, seed=1)
    _directional_check(selfie_all, x, seed=2)
    assert next(pose.graph.buffers()).dtype == torch.float32, "each builder call gives its own module"


def test_frozen_and_out_of_checkpoints(pose):
    assert list(pose.parameters()) == [] and pose.state_dict() == {}
    assert all(not b.requires_grad for b in pose.buffers())


@pytest.mark.parametrize("problem", ["missing", "changed"])
def test_missing_or_changed_model_file_is_a_clear_error(tmp_path, monkeypatch, problem):
    monkeypatch.setattr(mn, "_mediapipe_dir", lambda: tmp_path)
    if problem == "changed":
        path = tmp_path / mn.POSE_FILE[0]
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not the model")
    with pytest.raises(UserError, match=rf"pose_landmark_full\.tflite.*{problem}.*mediapipe==0\.10\.21") as e:
        mn.pose_net()
    assert "\n" not in str(e.value)
