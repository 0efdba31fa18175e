import pytest
import torch

from sci_lightning.errors import SCIConfigError
from sci_lightning.methods.cnn.metrics import ImageAggregator, vote_decision
from sci_lightning.methods.cnn.module import normalise_input
from sci_lightning.models.sci_cnn import SCICNN


def test_paper_cnn_shapes():
    net = SCICNN(num_classes=5)
    assert net(torch.zeros(4, 3, 32, 32)).shape == (4, 5)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.stride for c in convs] == [(2, 2), (2, 2)] and [c.kernel_size for c in convs] == [(3, 3)] * 2
    assert [(f.in_features, f.out_features) for f in fcs] == [(1152, 256), (256, 512), (512, 5)]
    drops = [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.5, 0.5]
    assert sum(p.numel() for p in net.parameters()) == 504_965


def test_depth_and_activation_options():
    assert SCICNN(3, filters=[32], activation="relu")(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(SCIConfigError, match="padding=1"):
        SCICNN(3, filters=[16, 16, 16, 16])
    with pytest.raises(SCIConfigError, match="activation"):
        SCICNN(3, activation="gelu")


def test_image_aggregation_mean_and_vote():
    agg = ImageAggregator(3)
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6], [0.2, 0.3, 0.5]])
    target = torch.tensor([0, 0, 0, 2, 2])
    image = torch.tensor([5, 5, 5, 2, 2])
    agg.update(probs[:2], target[:2], image[:2])
    agg.update(probs[2:], target[2:], image[2:])
    out = agg.compute()
    assert out["image"].tolist() == [2, 5] and out["target"].tolist() == [2, 0]
    assert torch.allclose(out["mean_probs"][1], probs[:3].mean(0))
    assert out["votes"][1].tolist() == [2, 1, 0] and out["n_patches"].tolist() == [2, 3]


def test_vote_ties_go_to_higher_mean_probability():
    votes = torch.tensor([[2.0, 2.0, 0.0]])
    assert vote_decision(votes, torch.tensor([[0.3, 0.5, 0.2]])).item() == 1
    assert vote_decision(votes, torch.tensor([[0.3, 0.2, 0.5]])).item() == 0  # class 2 had no votes


def test_normalise_input():
    x = torch.full((2, 4, 4, 3), 255, dtype=torch.uint8)
    assert normalise_input(x, "unit").shape == (2, 3, 4, 4) and normalise_input(x, "unit").max() == 1
    assert normalise_input(x, "centered").max() == 0.5
    assert torch.allclose(normalise_input(x, "patch_mean"), torch.zeros(2, 3, 4, 4))
