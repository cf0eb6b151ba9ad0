"""Probes on the shipped trunk: small heads on the frozen feature encoder train and predict on a tiny
labelled set, round-trip through save/load strictly, and older probe folders still load as scratch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drc.config_io import save_yaml
from drc.eval.feature_encoder import EncoderConfig, FeatureEncoder, load_encoder
from drc.eval.probe_heads import EncoderProbeNet
from drc.eval.probes import ProbeConfig, ProbeNet, Probes, train_probes
from drc.weights import atomic_save_tensors

HEADS = ProbeConfig(trunk="shipped", head_steps=200, batch_size=32, feature_views=2, precision="fp32")


def _tiny_set(n: int = 36, seed: int = 0):
    """Style = background colour (3), semantics = a bright square's corner (3): random otherwise."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[200, 40, 40], [40, 160, 60], [40, 60, 200]], dtype=torch.uint8)
    x = (torch.rand(n, 3, 32, 32, generator=g) * 40).to(torch.uint8)
    styles, sems = [], []
    for i in range(n):
        s, m = i % 3, (i // 3) % 3
        x[i] += colours[s].view(3, 1, 1)
        y0, x0 = [(2, 2), (2, 18), (18, 10)][m]
        x[i, :, y0 : y0 + 12, x0 : x0 + 12] = 255
        styles.append(f"s{s}")
        sems.append(f"m{m}")
    return x, styles, sems


@pytest.fixture(scope="module")
def trained():
    x, styles, sems = _tiny_set()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        probes = train_probes(x, styles, sems, range(27), range(27, 36), HEADS, seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    return probes, x


def test_shipped_trunk_probes_train_and_predict(trained):
    probes, x = trained
    assert isinstance(probes.net, EncoderProbeNet)
    assert probes.accuracy["n_heldout"] == 9 and 0.0 <= probes.accuracy["style_acc"] <= 1.0
    p = probes.predict(x[:5])
    e = probes.net.embed_dim
    assert len(p["style"]) == 5 and set(p["style"]) <= {"s0", "s1", "s2"}
    assert p["style_prob"].shape == (5, 3) and p["sem_prob"].shape == (5, 3)
    assert p["style_feats"].shape == (5, e) and p["content_feats"].shape == (5, e)
    assert p["feats"].shape == (5, 2 * e)
    # the colour of the background is an easy style: the heads learn it from 27 items
    assert probes.accuracy["style_acc"] >= 2 / 3


def test_the_encoder_stays_frozen(trained):
    probes, _ = trained
    shipped = load_encoder()
    for k, v in shipped.state_dict().items():
        assert torch.allclose(probes.net.encoder.state_dict()[k], v), k


def test_shipped_probes_round_trip(trained, tmp_path):
    probes, x = trained
    probes.save(tmp_path / "p")
    back = Probes.load(tmp_path / "p")
    assert back.config.trunk == "shipped" and isinstance(back.net, EncoderProbeNet)
    assert torch.allclose(back.predict(x[:4])["style_prob"], probes.predict(x[:4])["style_prob"], atol=1e-5)


def test_old_probe_folder_without_trunk_loads_as_scratch(tmp_path):
    """A folder written before `trunk` existed: its probe.yaml has no such key."""
    cfg = ProbeConfig(channels=8)
    net = ProbeNet(2, 3, channels=8)
    d = tmp_path / "old"
    d.mkdir()
    save_yaml(cfg, d / "probe.yaml")
    text = "\n".join(
        ln
        for ln in (d / "probe.yaml").read_text().splitlines()
        if not ln.startswith(("trunk", "encoder", "head_", "feature_views"))
    )
    (d / "probe.yaml").write_text(text + "\n")
    atomic_save_tensors(net.state_dict(), d / "probe.safetensors")
    (d / "probe.json").write_text('{"styles": ["a", "b"], "semantics": ["x", "y", "z"], "accuracy": {}}')
    back = Probes.load(d)
    assert back.config.trunk == "scratch" and isinstance(back.net, ProbeNet)


def test_another_encoder_folder_is_used(tmp_path):
    enc = FeatureEncoder(EncoderConfig(channels=8, embed_dim=8))
    atomic_save_tensors(enc.state_dict(), tmp_path / "encoder.safetensors")
    save_yaml(enc.cfg, tmp_path / "encoder.yaml")
    x, styles, sems = _tiny_set(12)
    cfg = ProbeConfig(trunk="shipped", encoder=str(tmp_path), head_steps=5, batch_size=8, feature_views=1)
    probes = train_probes(x, styles, sems, range(9), range(9, 12), cfg, progress=False)
    assert probes.net.embed_dim == 8
    assert np.isfinite(probes.accuracy["style_acc"])
