"""Loading fbrs.pth: strict, weights_only, tolerant of exactly the release's likely differences."""

from __future__ import annotations

import json

import pytest
import torch

from model.checkpoint import CheckpointError
from model.fbrs.load import load_fbrs, read_fbrs, state_dict_fingerprint
from model.fbrs.network import FBRSNetwork
from tests.shared_assets import require, write_synthetic_checkpoint

NUM_KEYS = 413
NUM_PARAMS = 31_396_604


@pytest.fixture(scope="module")
def random_sd():
    torch.manual_seed(0)
    return FBRSNetwork().state_dict()


def _save(tmp_path, sd, name="fbrs.pth"):
    path = tmp_path / name
    torch.save(sd, path)
    return path


def test_architecture_size(random_sd):
    assert len(random_sd) == NUM_KEYS
    assert sum(p.numel() for p in FBRSNetwork().parameters()) == NUM_PARAMS
    backbone = [k for k in random_sd if "feature_extractor.backbone" in k]
    # The original's auto-configuration: <= 276 float backbone keys means ResNet-50.
    assert len([k for k in backbone if "num_batches_tracked" not in k]) == 275
    assert random_sd["feature_extractor.aspp.project.0.weight"].shape[0] == 128


def test_keys_and_order_match_the_schema(random_sd):
    schema = json.loads(require("checkpoints/schema/fbrs.json").read_text())
    assert [(k["key"], tuple(k["shape"])) for k in schema["keys"]] == [
        (k, tuple(v.shape)) for k, v in random_sd.items()
    ]


def test_synthetic_checkpoint_loads_strictly(tmp_path):
    path = write_synthetic_checkpoint("fbrs", tmp_path / "fbrs.pth")
    # The checkpoint's own modules (read_fbrs) hold exactly the file's tensors ...
    net = read_fbrs(path, "cpu")
    saved = torch.load(path, weights_only=True)
    for key, value in net.state_dict().items():
        # The tool saves scalar num_batches_tracked as 1-element vectors; torch accepts both.
        assert torch.equal(value.reshape(-1), saved[key].reshape(-1)), key
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    # ... and the inference loader (batch norm folded) reads the same file strictly.
    prepared = load_fbrs(path, "cpu")
    assert not prepared.training and not any(p.requires_grad for p in prepared.parameters())


def test_random_init_round_trip(tmp_path, random_sd):
    net = read_fbrs(_save(tmp_path, random_sd), torch.device("cpu"))
    assert state_dict_fingerprint(net.state_dict()) == state_dict_fingerprint(random_sd)


def test_release_like_file_without_num_batches_tracked_and_with_dropout(tmp_path, random_sd):
    sd = {k: v for k, v in random_sd.items() if not k.endswith("num_batches_tracked")}
    assert len(sd) == 346
    sd["aspp_dropout"] = torch.tensor(0.2)
    net = read_fbrs(_save(tmp_path, sd), "cpu")
    w = "feature_extractor.aspp.concurent.1.0.weight"
    assert torch.equal(net.state_dict()[w], random_sd[w])


def test_unknown_extra_key_is_refused(tmp_path, random_sd):
    sd = dict(random_sd, **{"head.extra.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"unexpected keys: head\.extra\.weight"):
        load_fbrs(_save(tmp_path, sd), "cpu")


def test_wrong_shape_and_missing_keys_are_listed(tmp_path, random_sd):
    sd = dict(random_sd)
    sd["rgb_conv.0.weight"] = torch.zeros(8, 4, 1, 1)
    del sd["head.layers.2.bias"]
    path = _save(tmp_path, sd)
    with pytest.raises(CheckpointError) as err:
        load_fbrs(path, "cpu")
    message = str(err.value)
    assert str(path) in message and "f-BRS" in message
    assert "missing keys: head.layers.2.bias" in message
    assert "rgb_conv.0.weight (8, 4, 1, 1) (expected (8, 5, 1, 1))" in message


def test_other_network_passed_as_fbrs_is_named(tmp_path):
    sd = {"key_encoder.conv1.weight": torch.zeros(64, 3, 7, 7)}
    with pytest.raises(CheckpointError, match="looks like the STCN propagation network"):
        load_fbrs(_save(tmp_path, sd, "stcn.pth"), "cpu")


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_fbrs(tmp_path / "nope.pth", "cpu")
