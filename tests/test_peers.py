"""Peer networks of the paper's comparison: shapes, sizes, the MISLnet constraint, automatic patch sizes."""

import json
import logging

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from sci_lightning.errors import SCIConfigError
from sci_lightning.methods.cnn.module import SCIClassifier
from sci_lightning.models.peers import BaroffioNet, BondiNet, MISLNet, TuamaNet, high_pass_kernel

from conftest import run_in_process

PEERS = [(BaroffioNet, 48, 322_453), (TuamaNet, 64, 1_304_165), (BondiNet, 64, 338_965), (MISLNet, 128, 346_590)]


@pytest.mark.parametrize("cls,patch,n_params", PEERS)
def test_output_shape_and_parameter_count(cls, patch, n_params):
    net = cls(num_classes=5, patch_size=patch)
    assert net(torch.zeros(3, 3, patch, patch)).shape == (3, 5)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == n_params


@pytest.mark.parametrize("cls", [BaroffioNet, TuamaNet, BondiNet, MISLNet])
def test_too_small_patches_are_a_clear_error(cls):
    with pytest.raises(SCIConfigError, match="too small"):
        cls(num_classes=3, patch_size=8)


def test_bondi_convs_reach_1x1_with_caffe_pooling():
    assert BondiNet(3).features(torch.zeros(1, 3, 64, 64)).shape == (1, 128, 1, 1)


def test_tuama_high_pass_is_fixed_and_kills_flat_input():
    net = TuamaNet(3)
    assert abs(high_pass_kernel().sum()) < 1e-6 and "high_pass" not in dict(net.named_parameters())
    assert torch.allclose(net.residual(torch.full((1, 3, 64, 64), 0.7)), torch.zeros(1, 3, 60, 60), atol=1e-6)


def _constraint_error(net: MISLNet) -> float:
    w = net.constrained.weight.detach()
    centre = w[:, :, 2, 2]
    others = w.sum(dim=(2, 3)) - centre
    return max((centre + 1).abs().max().item(), (others - 1).abs().max().item())


def test_mislnet_constraint_holds_after_optimizer_steps(tmp_path):
    torch.manual_seed(0)
    net = MISLNet(3)
    assert _constraint_error(net) < 1e-5
    before = net.constrained.weight.detach().clone()
    module = SCIClassifier(net, ["a", "b", "c"], optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    x = torch.randint(0, 256, (24, 128, 128, 3), dtype=torch.uint8)
    data = DataLoader(TensorDataset(x, torch.randint(0, 3, (24,)), torch.arange(24)), batch_size=8)
    trainer = pl.Trainer(
        max_steps=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=data)
    assert trainer.global_step == 6
    assert not torch.allclose(net.constrained.weight.detach(), before)  # it did learn
    assert _constraint_error(net) < 1e-4  # and was re-projected after every step


@pytest.mark.parametrize("model,size", [("bondi", 64), ("baroffio", 48)])
def test_peer_gets_its_patch_size_automatically(model, size, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run_in_process(
        "train",
        f"model={model}",
        "logger=none",
        "n_folds=3",
        "data.images_per_camera=6",
        "data.image_size=128",
        "trainer.max_epochs=1",
        "+trainer.enable_progress_bar=false",
        run_dir=tmp_path,
    )
    assert any(f"takes {size} px patches" in r.getMessage() for r in caplog.records)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["model"] == model and m["n_test_patches"] > 0


@pytest.mark.parametrize(
    "experiment,param,values",
    [
        ("ablation_depth", "model.net.filters", "[64],[64,128],[64,128,128],[64,128,128,128]"),
        ("ablation_activation", "model.net.activation", "relu,leaky_relu"),
        ("ablation_dropout", "model.net.dropout_keep", "0.35,0.45,0.5,0.55"),
        ("compare_peers", "model", "sci_cnn,baroffio,tuama,bondi,mislnet"),
    ],
)
def test_experiment_configs_compose_as_fold_sweeps(experiment, param, values):
    from hydra import compose, initialize_config_dir

    from conftest import REPO

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and params["fold"] == "range(10)" and params[param] == values


@pytest.mark.slow
def test_ablation_sweep_keeps_one_summary_per_variant(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    cmd = [
        sys.executable,
        "train.py",
        "experiment=ablation_activation",
        f"hydra.sweep.dir={tmp_path}",
        "n_folds=2",
        "hydra.sweeper.params.fold=0",  # one fold per variant is enough to see one summary row per variant
        "data.images_per_camera=6",
        "data.image_size=96",
        "trainer.max_epochs=1",
        "logger=none",
        "+trainer.enable_progress_bar=false",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    groups = json.loads((tmp_path / "cv_summary.json").read_text())["groups"]
    variants = sorted(g["setting"].split("model.net.activation=")[1].split(",")[0] for g in groups)
    assert variants == ["leaky_relu", "relu"] and all(g["n"] == 1 for g in groups)
    from sci_lightning.sweep.__main__ import main as sweep_cli

    assert sweep_cli(["report", str(tmp_path)]) == 0
    assert (tmp_path / "sweep_accuracy.png").stat().st_size > 1000
    rows = [
        line for line in (tmp_path / "sweep_report.md").read_text().splitlines() if line.startswith("| activation=")
    ]
    assert sorted(r.split(" |")[0] for r in rows) == ["| activation=leaky_relu", "| activation=relu"]


def test_variant_labels_name_only_what_differs():
    from sci_lightning.sweep.summary import variant_labels

    settings = [["model.net.filters=[64]", "n_folds=3"], ["model.net.filters=[64,128]", "n_folds=3"]]
    assert variant_labels(settings) == ["filters=[64]", "filters=[64,128]"]
    assert variant_labels([["a=1"]]) == ["a=1"]
    # Hydra's own parser: a deletion and an addition are told apart from a plain value (no string splitting)
    assert variant_labels([["~model.scheduler", "+x=[1,2]"], ["model.scheduler=null", "+x=[1,2]"]]) == [
        "scheduler=~",
        "scheduler=null",
    ]


def _fake_job(job_dir, overrides, metrics):
    """A finished job folder as train.py/evaluate.py leave it (only the files the summary reads)."""
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job_dir / "metrics.json").write_text(json.dumps(metrics))
    (job_dir / "confusion_matrices.json").write_text(
        json.dumps({"classes": ["a", "b"], "patch": None, "image": [[2, 0], [1, 1]]})
    )


def test_report_puts_a_prnu_subsweep_beside_the_cnn_sweep(tmp_path):
    """A PRNU sweep run into SWEEP/prnu joins the CNN sweep's report as its own row, patch level shown as a dash."""
    from sci_lightning.sweep.figures import write_report

    base = {"task": "model_level", "data": "synthetic", "n_folds": 2}
    for k in (0, 1):
        _fake_job(
            tmp_path / str(k),
            ["experiment=compare_peers", "model=tuama", f"fold={k}"],
            {**base, "fold": k, "model": "tuama", "test/acc_patch": 0.6 + k / 10, "test/acc_image": 0.8},
        )
        _fake_job(
            tmp_path / "prnu" / str(k),
            ["method=prnu", f"fold={k}"],
            {**base, "fold": k, "model": "prnu", "test/acc_image": 0.9 + k / 20},
        )
    write_report(tmp_path)  # the CNN sweep's own summary came first in real life; re-summarised here
    rows = {
        line.split(" | ")[0]: line
        for line in (tmp_path / "sweep_report.md").read_text().splitlines()
        if line.startswith("| model=")
    }
    assert set(rows) == {"| model=prnu", "| model=tuama"}
    assert "| 2 | — | 0.925 ± 0.035 |" in rows["| model=prnu"]
    assert "0.650 ± 0.071 | 0.800 ± 0.000" in rows["| model=tuama"]
    assert (tmp_path / "sweep_accuracy.png").stat().st_size > 1000
