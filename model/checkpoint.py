"""Reading checkpoints safely and loading them strictly, with errors a person can act on."""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

# Distinctive keys of each official checkpoint: lets an error say what a wrong file actually is.
_SIGNATURES: tuple[tuple[str, str], ...] = (
    ("key_encoder.conv1.weight", "the STCN propagation network (stcn.pth)"),
    ("final_conv.weight", "the fusion network (fusion_stcn.pth)"),
    ("classifier.aspp.project.0.weight", "the S2M scribble network (s2m.pth)"),
    ("feature_extractor.backbone.conv1.0.weight", "the f-BRS click network (fbrs.pth)"),
)
# Networks of other versions or projects that people mistake for ours (checked before _SIGNATURES:
# some share our key prefixes). Matched by key prefix.
_OTHER_VERSIONS: tuple[tuple[str, str], ...] = (
    ("key_proj.d_proj.", "XMem's network (STCN's successor, with a different memory design)"),
    ("decoder.hidden_update.", "XMem's network (STCN's successor, with a different memory design)"),
    ("pixel_encoder.", "Cutie's network (a later model with an object transformer)"),
    ("object_transformer.", "Cutie's network (a later model with an object transformer)"),
    ("mask_rgb_encoder.", "the first MiVOS release's STM-based propagation model"),
    ("kv_m_f16.", "the first MiVOS release's STM-based propagation model"),
)
_MAX_LISTED = 5
_REDOWNLOAD = "download it again (python download_model.py)"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _looks_like_html(head: bytes) -> bool:
    text = head.lstrip().lower()
    return text.startswith(b"<") and any(m in text for m in (b"<html", b"<!doctype", b"<body"))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a bare state dict on the CPU without unpickling arbitrary objects.

    Raises CheckpointError for a missing, empty, HTML, truncated or non-state-dict file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, f"file not found; {_REDOWNLOAD} or pass the right path")
    if path.is_dir():
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(path, f"is empty (0 bytes); {_REDOWNLOAD}")
    with open(path, "rb") as f:
        head = f.read(1024)
    if _looks_like_html(head):
        raise CheckpointError(
            path,
            "is an HTML page, not a checkpoint (a download that hit a quota or login page); "
            f"delete it and {_REDOWNLOAD}",
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            problem = "holds Python objects besides tensors; refusing to unpickle it (unsafe)"
        else:
            problem = f"is corrupt or not a PyTorch checkpoint ({first}); {_REDOWNLOAD}"
        raise CheckpointError(path, problem) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(
            path,
            f"is truncated or corrupt ({size:,} bytes, unreadable as a PyTorch checkpoint); "
            f"{_REDOWNLOAD}",
        ) from exc
    return _as_state_dict(obj, path)


def _as_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    # Training scripts often wrap the weights; accept the usual wrapper keys.
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "network", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(path, f"does not hold a state dict (found {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(path, "does not hold any tensors")
    return tensors


def apply_compatible_rewrites(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite known, harmless variants of the official layout into it. One rule per line."""
    out = dict(sd)
    # Saved from nn.DataParallel / DistributedDataParallel: every key starts with "module.".
    if out and all(k.startswith("module.") for k in out):
        out = {k[len("module.") :]: v for k, v in out.items()}
    # Older single-object STCN value encoder: 4 input channels; zero weights for the "others" map.
    w = out.get("value_encoder.conv1.weight")
    if w is not None and w.dim() == 4 and w.shape[1] == 4:
        pad = torch.zeros(w.shape[0], 1, *w.shape[2:], dtype=w.dtype)
        out["value_encoder.conv1.weight"] = torch.cat([w, pad], dim=1)
        log.info("value_encoder.conv1.weight: padded 4 input channels to 5 with zeros")
    return out


def identify(sd: Mapping[str, torch.Tensor]) -> str | None:
    """Which known network a state dict belongs to, if any."""
    for prefix, description in _OTHER_VERSIONS:
        if any(k.startswith(prefix) for k in sd):
            return description
    for key, description in _SIGNATURES:
        if key in sd:
            return description
    return None


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def _shapes_compatible(given: torch.Size, expected: torch.Size) -> bool:
    # torch itself accepts a 1-element vector for a scalar buffer (older saves, numpy round-trips).
    return given == expected or (len(expected) == 0 and tuple(given) == (1,))


def load_strict(
    model: nn.Module, sd: Mapping[str, torch.Tensor], path: str | Path, what: str
) -> None:
    """Load every key with matching shapes, or raise CheckpointError describing the difference.

    A missing BatchNorm `num_batches_tracked` is tolerated (unused at inference).
    """
    expected = model.state_dict()
    sd = dict(sd)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in sd:
            sd[key] = torch.zeros_like(value)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong_shape = [
        f"{k} {tuple(sd[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in sd and not _shapes_compatible(sd[k].shape, v.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = [f"does not match {what}"]
        found, ours = identify(sd), identify(expected)
        if found and found != ours:
            parts[0] += f"; it looks like {found}"
        elif found is not None and found == ours:
            # Our network's family, other keys or shapes: a checkpoint from another code version.
            common = sum(k in sd for k in expected)
            parts[0] += (
                f"; it looks like a different version of it ({common} of {len(expected)} "
                f"expected keys present), which this program cannot use; {_REDOWNLOAD}"
            )
        if found in {d for _, d in _OTHER_VERSIONS}:
            parts[0] += f"; this program needs the official MiVOS-STCN weights: {_REDOWNLOAD}"
        if missing:
            parts.append(f"{len(missing)} missing keys: {_listed(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_listed(unexpected)}")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} wrong shapes: {_listed(wrong_shape)}")
        raise CheckpointError(path, "; ".join(parts))
    model.load_state_dict(sd, strict=True)


def build_uninitialised(factory: Callable[[], nn.Module]) -> nn.Module:
    """factory()'s network with uninitialised CPU tensors, for a strict checkpoint load to fill.

    Constructing on the meta device skips the random initialisation of every layer, which a
    checkpoint overwrites anyway (~0.3 s of a start-up on 2 cores). Only for strict loading:
    every parameter and buffer must then come from the file (our networks have no
    non-persistent buffers).
    """
    with torch.device("meta"):
        net = factory()
    return net.to_empty(device="cpu")
