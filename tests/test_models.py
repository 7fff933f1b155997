"""Every model config builds and trains a step on a tiny input; the benchmark is exact."""

from pathlib import Path

import pytest
import torch
from conftest import run_cli

from landcover.config import CONFIG_DIR, load_config
from landcover.losses import class_weights, soft_proportions, total_loss
from landcover.members import member_for
from landcover.members.benchmark_unet import BenchmarkUNet
from landcover.members.network import count_parameters
from landcover.runtime import to_layout

NETWORK_CONFIGS = sorted(
    p.stem
    for p in (CONFIG_DIR / "models").glob("*.yaml")
    if member_for(load_config(p.stem)).is_network  # the LightGBM member: test_training
)


def test_benchmark_unet_has_the_official_parameter_count():
    model = BenchmarkUNet()
    assert count_parameters(model) == 984_234
    convs = [
        m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    assert len(convs) == 21  # the README's 21 convolutions, the 1x1 head included
    assert model(torch.zeros(1, 4, 32, 32)).shape == (1, 10, 32, 32)


@pytest.mark.parametrize("name", NETWORK_CONFIGS)
def test_model_config_forward_backward(name: str):
    config = load_config(name)
    torch.manual_seed(0)
    member = member_for(config)
    model = member.build()
    x = torch.randn(2, member.in_channels, 64, 64)  # 8 with normalize.patch_relative
    masks = torch.randint(2, 10, (2, 64, 64))
    target = torch.nn.functional.one_hot(masks.flatten(1), 10).float().mean(dim=1)
    logits = model(x)
    assert logits.shape[:2] == (2, 10)
    props = soft_proportions(logits)
    assert torch.allclose(props.sum(dim=1), torch.ones(2), atol=1e-5)
    loss = total_loss(
        logits,
        {"mask": masks, "target": target},
        config["loss"],
        class_weights(masks.numpy(), "none"),
    )
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and all(g is not None for g in grads)


def test_channels_last_on_the_cpu_predicts_what_contiguous_does():
    """``run.channels_last`` lays weights and inputs out channels-last on any device (the CPU's
    oneDNN convolutions run faster so): only the last bits of the floats move."""
    outputs = {}
    for last in (False, True):
        config = load_config("unet_regnety_002", overrides={"run": {"channels_last": last}})
        torch.manual_seed(0)
        model = member_for(config).prepare(torch.device("cpu")).eval()
        weight = next(p for p in model.parameters() if p.ndim == 4)
        assert weight.is_contiguous(memory_format=torch.channels_last) == last
        x = torch.randn(2, 4, 64, 64, generator=torch.Generator().manual_seed(1))
        x = to_layout(x, config["run"])
        with torch.inference_mode():
            outputs[last] = model(x)
    assert not torch.equal(outputs[False], outputs[True])  # another kernel ran
    torch.testing.assert_close(outputs[True], outputs[False], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["unet_resnet18", "classifier_resnet18"])
def test_pretrained_weights_unavailable_is_a_clear_error(name: str, demo_dir: Path, tmp_path: Path):
    # run_cli sets HF_HUB_OFFLINE=1, as a machine without network access would fail
    result = run_cli(
        "src/train.py",
        "--experiments",
        name,
        "--data",
        str(demo_dir),
        "--artifacts",
        str(tmp_path),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--set",
        "model.pretrained=true",
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "could not be fetched" in lines[0]
    assert "set model.pretrained: false" in lines[0]
    assert not list(tmp_path.glob(f"oof/{name}"))  # nothing half-written


def test_class_weights_ignore_no_data_and_clouds():
    masks = torch.tensor([[0, 1, 2, 2, 2, 3]]).numpy()
    weights = class_weights(masks, "inverse_frequency")
    assert weights[0] == 0 and weights[1] == 0
    assert weights[3] > weights[2] > 0  # rarer class weighs more
    soft = class_weights(masks, "sqrt_inverse_frequency")
    assert soft[0] == 0 and soft[1] == 0 and soft[4:].sum() == 0  # absent classes too
    # 3 pixels of class 2, 1 of class 3: weights 1/sqrt(3/4) and 1/sqrt(1/4), mean 1
    ratio = 3**0.5
    torch.testing.assert_close(soft[2:4], torch.tensor([2 / (1 + ratio), 2 * ratio / (1 + ratio)]))
    assert float(weights[3] / weights[2]) == pytest.approx(3.0)
    fourth = class_weights(masks, "fourth_root_inverse_frequency")
    assert float(fourth[3] / fourth[2]) == pytest.approx(3**0.25)
    assert float(fourth[2:4].mean()) == pytest.approx(1.0) and fourth[4:].sum() == 0
