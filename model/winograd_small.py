"""3x3 convolutions on small maps as Winograd F(4x4, 3x3) with the kernel transformed once (fp32).

NNPACK (model/winograd.py) transforms the kernel at every call: on a 1/16 map of a 480p frame
(30x54) that is most of its time, and oneDNN's direct convolution does 4x the multiplications.
Here the kernel transform U = G g G^T (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", CVPR 2016) is computed once per weight (in float64, then kept in the weight's dtype)
and each call is:

* input tiles: the 6x6 windows d (stride 4) of the zero-padded input, gathered as 36 strided
  slices of the channels-last map into V_in (36, tiles, C);
* V = (B^T (x) B^T) V_in: one (36 x 36) product for all tiles and channels;
* M = V @ U: 36 batched (tiles x C) @ (C x O) products (MKL), the bulk of the work;
* Y = (A^T (x) A^T) M: the 4x4 outputs of every tile, placed back into the (N, O, H, W) map,
  which is channels-last (the layout of the networks' other layers) unless the input was NCHW.

All K objects' maps are one batch (one product), unlike NNPACK's batch-1 calls. A dilated
convolution (rate r) only mixes pixels of the same phase (i mod r, j mod r): its tiles are
4x4 outputs r apart, whose 6x6 windows are input pixels r apart, so the same gather with a
step of r covers it exactly (S2M's layer4, dilation 2). Rounding differs from direct
convolution by ~1e-5 relative (5-8e-6 measured, NNPACK's F(6x6, 3x3) 1e-5), inside the parity
tolerances. When it is used is model/winograd.py's rule (measured there).
"""

from __future__ import annotations

import functools

import torch

# Lavin & Gray's F(4x4, 3x3) matrices (interpolation points 0, +-1, +-2, infinity).
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_AT = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)
TILE = 4  # outputs per tile side
WINDOW = 6  # inputs per tile side (TILE + 3 - 1)


@functools.cache
def _tile_transforms(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(B^T (x) B^T) (36, 36) and (A^T (x) A^T) (16, 36) in `dtype`: the 2-D transforms of a
    flattened 6x6 tile as one matrix each."""
    bt = torch.tensor(_BT, dtype=torch.float64)
    at = torch.tensor(_AT, dtype=torch.float64)
    return torch.kron(bt, bt).to(dtype), torch.kron(at, at).to(dtype)


def transform_kernel(weight: torch.Tensor) -> torch.Tensor:
    """weight (O, C, 3, 3) -> U (36, C, O) contiguous in weight's dtype (G g G^T per
    (output, input) channel pair, flattened), computed in float64. 4x the weight's memory."""
    g = torch.tensor(_G, dtype=torch.float64)
    out_ch, in_ch = weight.shape[:2]
    flat = weight.detach().to(torch.float64).reshape(out_ch * in_ch, 9)
    u = torch.kron(g, g) @ flat.T  # (36, O*C)
    return u.view(36, out_ch, in_ch).transpose(1, 2).to(weight.dtype).contiguous()


def tiled_extent(size: int, rate: int) -> int:
    """The extent (pixels along one side) the tiles of a `size` map at dilation `rate` cover:
    each of the `rate` phases rounded up to whole tiles."""
    per_phase = -(-size // rate)
    return rate * TILE * -(-per_phase // TILE)


def small_map_conv3x3(
    x: torch.Tensor,
    u: torch.Tensor,
    bias: torch.Tensor | None,
    rate: int = 1,
    relu: bool = False,
    add: torch.Tensor | None = None,
) -> torch.Tensor:
    """A 3x3 convolution, stride 1, dilation and zero padding `rate`, of x (N, C, H, W) with
    the kernel U = transform_kernel(weight) (36, C, O), + bias (O,), + add (N, O, H, W), then
    ReLU when `relu` -> (N, O, H, W) in x's dtype, channels-last unless x is NCHW-contiguous.
    x: CPU or any device, any memory format; float32 expected (float64 works). No autograd."""
    n, c, h, w = x.shape
    out_ch = u.shape[2]
    r = rate
    tiles_h, tiles_w = tiled_extent(h, r) // (r * TILE), tiled_extent(w, r) // (r * TILE)
    # Zero-padded input in blocks of r rows/columns: one block of padding before the map, the
    # tiles' blocks, one block after (a 3x3 tap reaches one step of r beyond its tile).
    blocks_h, blocks_w = TILE * tiles_h + 2, TILE * tiles_w + 2
    padded = x.new_zeros(n, blocks_h * r, blocks_w * r, c)
    padded[:, r : r + h, r : r + w] = x.permute(0, 2, 3, 1)
    grid = padded.view(n, blocks_h, r, blocks_w, r, c)
    # Window position (i, j) of tile (a, b) in phase (p, q) is input block (4a + i, 4b + j),
    # offset (p, q) inside it: one strided slice per (i, j) over all tiles and phases.
    windows = x.new_empty(WINDOW, WINDOW, n, tiles_h, r, tiles_w, r, c)
    for i in range(WINDOW):
        rows = slice(i, i + TILE * tiles_h, TILE)
        for j in range(WINDOW):
            windows[i, j] = grid[:, rows, :, j : j + TILE * tiles_w : TILE]
    kron_b, kron_a = _tile_transforms(x.dtype)
    count = n * tiles_h * r * tiles_w * r
    v = torch.mm(kron_b.to(x.device), windows.view(WINDOW * WINDOW, -1))
    m = torch.bmm(v.view(WINDOW * WINDOW, count, c), u)  # (36, tiles, O)
    y = torch.mm(kron_a.to(x.device), m.view(WINDOW * WINDOW, -1))
    # (a', b', n, tile row, p, tile col, q, O) -> map rows (tile row, a', p), columns likewise
    y = y.view(TILE, TILE, n, tiles_h, r, tiles_w, r, out_ch).permute(2, 3, 0, 4, 5, 1, 6, 7)
    y = y.reshape(n, tiles_h * TILE * r, tiles_w * TILE * r, out_ch)[:, :h, :w]
    nchw = x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.contiguous_format if nchw else torch.channels_last
    out = torch.empty((n, out_ch, h, w), dtype=x.dtype, device=x.device, memory_format=fmt)
    out_hwc = out.permute(0, 2, 3, 1)
    if bias is None:
        out_hwc.copy_(y)
    else:
        torch.add(y, bias, out=out_hwc)
    if add is not None:
        out.add_(add)
    return out.relu_() if relu else out
