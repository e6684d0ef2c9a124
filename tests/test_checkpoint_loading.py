"""Strict checkpoint loading through the real loader, its rewrites, and its error messages."""

from __future__ import annotations

import collections

import pytest
import torch

from model.build import (
    FUSION,
    PROPAGATION,
    S2M,
    load_fusion_net,
    load_network,
    load_prop_net,
    load_s2m,
)
from model.checkpoint import CheckpointError, apply_compatible_rewrites, read_state_dict


@pytest.fixture(scope="module")
def prop_sd():
    torch.manual_seed(0)
    return PROPAGATION.factory().state_dict()


def _same_weights(a: torch.nn.Module, sd: dict) -> bool:
    return all(torch.equal(v, sd[k].reshape(v.shape)) for k, v in a.state_dict().items())


@pytest.mark.parametrize(
    ("schema", "spec", "loader"),
    [
        ("stcn", PROPAGATION, load_prop_net),
        ("fusion_stcn", FUSION, load_fusion_net),
        ("s2m", S2M, load_s2m),
    ],
)
def test_synthetic_official_layout_loads_strictly(synthetic_checkpoints, schema, spec, loader):
    path = synthetic_checkpoints[schema]
    # The checkpoint's own modules (precision None) hold exactly the file's tensors ...
    net = load_network(spec, path, "cpu")
    assert not net.training
    assert _same_weights(net, torch.load(path, weights_only=True))
    # ... and the inference loader (batch norm folded) reads the same file strictly.
    assert not loader(path, "cpu").training


def test_roundtrip_of_own_random_weights(tmp_path, prop_sd):
    path = tmp_path / "stcn.pth"
    torch.save(prop_sd, path)
    assert _same_weights(load_network(PROPAGATION, path), prop_sd)


def test_dataparallel_prefix_is_stripped(tmp_path, prop_sd):
    path = tmp_path / "dp.pth"
    torch.save(collections.OrderedDict(("module." + k, v) for k, v in prop_sd.items()), path)
    assert _same_weights(load_network(PROPAGATION, path), prop_sd)


def test_four_channel_value_encoder_is_zero_padded(tmp_path, prop_sd):
    old = dict(prop_sd)
    old["value_encoder.conv1.weight"] = prop_sd["value_encoder.conv1.weight"][:, :4].clone()
    path = tmp_path / "old.pth"
    torch.save(old, path)
    net = load_network(PROPAGATION, path)
    w = net.value_encoder.conv1.weight
    assert w.shape[1] == 5
    assert torch.equal(w[:, :4], old["value_encoder.conv1.weight"])
    assert torch.count_nonzero(w[:, 4]) == 0


def test_rewrites_leave_official_layout_untouched(prop_sd):
    out = apply_compatible_rewrites(prop_sd)
    assert list(out) == list(prop_sd)
    assert all(out[k] is prop_sd[k] for k in prop_sd)


def test_missing_num_batches_tracked_is_accepted(tmp_path, prop_sd):
    trimmed = {k: v for k, v in prop_sd.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "no_nbt.pth"
    torch.save(trimmed, path)
    assert _same_weights(load_network(PROPAGATION, path), prop_sd)


def test_truncated_file_is_named_and_explained(tmp_path, prop_sd):
    path = tmp_path / "stcn.pth"
    torch.save(prop_sd, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError) as err:
        load_prop_net(path)
    assert str(path) in str(err.value)
    assert "truncated or corrupt" in str(err.value)


def test_html_page_is_recognised(tmp_path):
    path = tmp_path / "s2m.pth"
    path.write_text("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title>")
    with pytest.raises(CheckpointError, match="HTML page") as err:
        load_s2m(path)
    assert str(path) in str(err.value)


def test_swapped_checkpoint_says_what_it_is(synthetic_checkpoints):
    path = synthetic_checkpoints["s2m"]
    with pytest.raises(CheckpointError) as err:
        load_prop_net(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "does not match the STCN propagation network" in msg
    assert "looks like the S2M scribble network" in msg
    assert "missing keys: key_encoder." in msg
    assert "unexpected keys: backbone." in msg


def test_shape_mismatch_lists_the_key_and_both_shapes(tmp_path):
    sd = FUSION.factory().state_dict()
    sd["conv1.0.weight"] = torch.zeros(32, 7, 3, 3)
    path = tmp_path / "fusion.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_network(FUSION, path)
    msg = str(err.value)
    assert "1 wrong shapes: conv1.0.weight (32, 7, 3, 3) (expected (32, 9, 3, 3))" in msg
    assert "missing" not in msg and "unexpected" not in msg


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(CheckpointError, match="file not found"):
        read_state_dict(tmp_path / "nope.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_state_dict(empty)


class _NotATensor:
    pass


def test_arbitrary_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": _NotATensor()}, path)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        read_state_dict(path)


def test_wrapped_state_dict_is_unwrapped(tmp_path):
    sd = S2M.factory().state_dict()
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": sd, "it": torch.tensor(5)}, path)
    assert _same_weights(load_network(S2M, path), sd)


def _rename_keys(sd, old: str, new: str) -> dict:
    return {k.replace(old, new, 1): v for k, v in sd.items()}


@pytest.mark.parametrize(
    "case, expected",
    [
        # An STCN-family file whose decoder was renamed/reshaped in another code version.
        ("renamed_decoder", "looks like a different version of it"),
        ("xmem", "XMem's network"),
        ("stm_mivos", "first MiVOS release's STM-based propagation model"),
    ],
)
def test_checkpoint_of_an_incompatible_version_is_named(tmp_path, prop_sd, case, expected):
    sd = dict(prop_sd)
    if case == "renamed_decoder":
        sd = _rename_keys(sd, "decoder.", "decoder_v2.")
    elif case == "xmem":
        sd["key_proj.d_proj.weight"] = torch.zeros(1, 1024, 3, 3)
        sd["decoder.hidden_update.transform.weight"] = torch.zeros(3, 3)
    else:
        sd = _rename_keys(sd, "key_encoder.", "mask_rgb_encoder.")
    path = tmp_path / "stcn ünïcode.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_prop_net(path)
    msg = str(err.value)
    assert msg.startswith(str(path))
    assert expected in msg
    assert "python download_model.py" in msg
    assert "\n" not in msg


def test_a_checkpoint_in_the_legacy_torch_format_loads(tmp_path, prop_sd):
    # Checkpoints saved by torch < 1.6 use the tar-based format; weights_only reads it too.
    path = tmp_path / "old.pth"
    torch.save(prop_sd, path, _use_new_zipfile_serialization=False)
    assert _same_weights(load_network(PROPAGATION, path), prop_sd)
