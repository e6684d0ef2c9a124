"""Space-time memory read: L2 affinity, top-k softmax, read-out, and the fusion attention map.

Shapes (networks.md A.5/A.6): memory key mk (1, Ck, T, h, w), memory value mv (K, Cv, T, h, w),
query key qk (1, Ck, h, w). N = T*h*w memory positions, M = h*w query positions.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F


def l2_affinity(mk: torch.Tensor, qk: torch.Tensor) -> torch.Tensor:
    """Negative squared distance / sqrt(Ck) between every memory and query position: (1, N, M).

    The ||qk||^2 term cancels in the softmax; it is kept so the numbers match the original.
    """
    ck = mk.shape[1]
    mk = mk.flatten(start_dim=2)  # 1, Ck, N
    qk = qk.flatten(start_dim=2)  # 1, Ck, M
    a_sq = mk.pow(2).sum(1).unsqueeze(2)  # 1, N, 1
    b_sq = qk.pow(2).sum(1).unsqueeze(1)  # 1, 1, M
    ab = mk.transpose(1, 2) @ qk  # 1, N, M
    return (2 * ab - a_sq - b_sq) / math.sqrt(ck)


def topk_softmax(affinity: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the top_k entries of every column (dim 1), softmax them, zero the rest: same shape."""
    k = min(top_k, affinity.shape[1])
    values, indices = torch.topk(affinity, k=k, dim=1)
    weights = torch.exp(values - values[:, :1])
    weights = weights / weights.sum(dim=1, keepdim=True)
    return torch.zeros_like(affinity).scatter_(1, indices, weights)


def memory_affinity(mk: torch.Tensor, qk: torch.Tensor, top_k: int) -> torch.Tensor:
    """Sparse (top-k) read weights from memory keys (1,Ck,T,h,w) to a query key (1,Ck,h,w)."""
    return topk_softmax(l2_affinity(mk, qk), top_k)


def readout(affinity: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
    """Weighted sum of memory values for every object: mv (K,Cv,T,h,w) -> (K,Cv,h,w)."""
    num_objects, cv, _, h, w = mv.shape
    flat = mv.reshape(num_objects, cv, -1)  # K, Cv, N
    return (flat @ affinity).view(num_objects, cv, h, w)


# Gathered read-outs are computed in query blocks so the (K, Cv, block, top_k) temporary stays
# around 64 MB whatever the frame size.
_GATHER_BUDGET = 16 << 20  # elements
# Up to this many memory positions per query position the dense product is faster (T <= 2).
DENSE_MAX_RATIO = 2


def read_memory(
    mk: torch.Tensor, qk: torch.Tensor, mv: torch.Tensor, top_k: int, sparse: bool | None = None
) -> torch.Tensor:
    """memory_affinity + readout of the original, faster: (K, Cv, h, w) float32 (any memory
    format: channels-last on the CPU, where the sparse product leaves it so).

    mk (1,Ck,T,h,w), qk (1,Ck,h,w), mv (K,Cv,T,h,w). The same affinity and top-k softmax,
    computed query-major ((M, N): top-k runs along rows; on the CPU in cache-sized blocks,
    top_k_affinity). The original scatters the weights into an N x M matrix that is zero but
    for top_k entries per column and multiplies it densely, which grows with the memory (~0.5 s
    per frame and object at 11 memory frames at 480p). Here the weights stay sparse: on the CPU
    a CSR matrix (top_k entries per query row) times each object's memory values (MKL's
    sparse-dense product through torch.sparse.mm: 1-2 ms per object at 480p where the dense
    product took 34-98 ms for 1-3 objects at 2 memory frames); on other devices the dense
    product for a memory of up to DENSE_MAX_RATIO frames and gathered rows beyond. Numbers equal
    the original's up to float summation order (tests/test_speed_modes.py). `sparse` forces one
    read-out (None: sparse on the CPU, the other elsewhere).
    """
    mkf, qkf = mk.flatten(start_dim=2)[0], qk.flatten(start_dim=2)[0]  # Ck,N / Ck,M
    n = mkf.shape[1]
    values, indices = top_k_affinity(mkf, qkf, top_k)
    weights = torch.exp(values - values[:, :1])
    weights = weights / weights.sum(dim=1, keepdim=True)  # M, k
    if sparse is None:
        sparse = mv.device.type == "cpu"
    readout_of = _sparse_readout if sparse else _dense_or_gathered_readout
    return readout_of(indices, weights, mv, n).view(*mv.shape[:2], *qk.shape[-2:])


# On the CPU the affinity is computed and reduced to its top-k in blocks of QUERY_BLOCK query
# rows x MEMORY_BLOCK memory positions (8 MB of float32, which stays in the cache from the
# product that writes it to the top-k that reads it) rather than as one (M, N) matrix: 630 MB at
# 60 memory frames of 480p, written by the product, read back by top-k, and page-faulted in
# afresh at every frame. Within a block, top-k first picks the CHUNK-wide column chunks with the
# k largest maxima: every one of the block's k largest entries lies in one of them (an entry
# outside has at least k larger chunk maxima above it), so the exact top-k then reads k * CHUNK
# entries per row instead of MEMORY_BLOCK. The blocks' candidates are merged by one last top-k.
# bench/bench_memory_read.py, two runs: 0.61-0.72x the one-matrix time at 30-60 memory frames of
# 480p, 0.71-0.94x at 5-10, 0.91-1.03x at 2; the same entries chosen.
QUERY_BLOCK = 256
MEMORY_BLOCK = 128 * 64
CHUNK = 64


def top_k_affinity(
    mkf: torch.Tensor, qkf: torch.Tensor, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k = min(top_k, N) largest entries of every query row of the affinity
    (2 qk.mk - |mk|^2) / sqrt(Ck) (the original's L2 affinity without its -|qk|^2 term, which
    is constant along a row: it changes neither the choice nor the softmax).

    mkf (Ck, N) memory keys, qkf (Ck, M) query keys, float32 -> values (M, k) float32 in
    descending order, indices (M, k) int64 into N. Ties between equal entries may resolve to
    either index (as torch.topk's do). On the CPU without autograd: in blocks (see above);
    elsewhere one (M, N) product and torch.topk.
    """
    ck, n = mkf.shape
    m = qkf.shape[1]
    k = min(top_k, n)
    scale = 1 / math.sqrt(ck)
    squares = mkf.pow(2).sum(0)[None, :]  # 1, N
    grad = torch.is_grad_enabled() and (mkf.requires_grad or qkf.requires_grad)
    if mkf.device.type != "cpu" or grad:
        affinity = torch.addmm(squares, qkf.t(), mkf, beta=-scale, alpha=2 * scale)
        return torch.topk(affinity, k=k, dim=1)
    starts = range(0, n, MEMORY_BLOCK)
    # per query block, each memory block's k candidates (-inf where a block has fewer)
    cand_values = qkf.new_empty(min(m, QUERY_BLOCK), len(starts) * k)
    cand_indices = torch.zeros(cand_values.shape, dtype=torch.int64)
    block = qkf.new_empty(min(m, QUERY_BLOCK) * _padded(min(n, MEMORY_BLOCK)))
    values = qkf.new_empty(m, k)
    indices = torch.empty(m, k, dtype=torch.int64)
    query = qkf.t()  # M, Ck
    for q0 in range(0, m, QUERY_BLOCK):
        rows = min(QUERY_BLOCK, m - q0)
        for j, c0 in enumerate(starts):
            width = min(MEMORY_BLOCK, n - c0)
            padded = _padded(width)
            affinity = block[: rows * padded].view(rows, padded)
            torch.addmm(squares[:, c0 : c0 + width], query[q0 : q0 + rows],
                        mkf[:, c0 : c0 + width], beta=-scale, alpha=2 * scale,
                        out=affinity[:, :width])  # fmt: skip
            v, i = _block_top_k(affinity, width, min(k, width))
            got = v.shape[1]
            cand_values[:rows, j * k : j * k + got] = v
            cand_values[:rows, j * k + got : (j + 1) * k] = -math.inf  # a block narrower than k
            cand_indices[:rows, j * k : j * k + got] = i + c0
        v, pos = torch.topk(cand_values[:rows], k=k, dim=1)
        values[q0 : q0 + rows] = v
        indices[q0 : q0 + rows] = cand_indices[:rows].gather(1, pos)
    return values, indices


def _padded(width: int) -> int:
    """A block width rounded up to whole chunks."""
    return -(-width // CHUNK) * CHUNK


def _block_top_k(affinity: torch.Tensor, width: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (unsorted) of each row of affinity[:, :width]; affinity (rows, padded width),
    contiguous, its columns past `width` free to overwrite. Indices are block columns."""
    rows, padded = affinity.shape
    chunks = padded // CHUNK
    if chunks < 4 * k:  # the chunks would not narrow the search much
        return torch.topk(affinity[:, :width], k=k, dim=1, sorted=False)
    affinity[:, width:] = -math.inf  # never a chunk's maximum, never among the top k
    _, chosen = torch.topk(affinity.view(rows, chunks, CHUNK).amax(2), k=k, dim=1, sorted=False)
    # the chosen chunks' entries as (rows, k * CHUNK): whole 256-byte rows of a (rows * chunks,
    # CHUNK) view, copied by index_select
    flat = (chosen + chunks * torch.arange(rows)[:, None]).view(-1)
    candidates = affinity.view(rows * chunks, CHUNK).index_select(0, flat).view(rows, k * CHUNK)
    v, pos = torch.topk(candidates, k=k, dim=1, sorted=False)
    return v, chosen.gather(1, pos // CHUNK) * CHUNK + pos % CHUNK


def _dense_or_gathered_readout(
    indices: torch.Tensor, weights: torch.Tensor, mv: torch.Tensor, n: int
) -> torch.Tensor:
    """_sparse_readout for devices without a measured sparse product: (K, Cv, M) float32."""
    m, k = indices.shape
    num_objects, cv = mv.shape[:2]
    if n <= DENSE_MAX_RATIO * m:
        # a short memory: one dense GEMM is cheaper than gathering (measured: 28 vs 81 ms at
        # one 480p memory frame, 441 vs 120 ms at eleven)
        dense = weights.new_zeros(m, n).scatter_(1, indices, weights)  # M, N
        flat = mv.reshape(num_objects * cv, n).float()
        return (flat @ dense.t()).view(num_objects, cv, m)
    # rows of the memory (one per memory position, all objects' channels) gathered per query
    rows = mv.reshape(num_objects * cv, n).t().float().contiguous()  # N, K*Cv
    out = torch.empty(m, num_objects * cv, dtype=torch.float32, device=mv.device)
    block = max(1, _GATHER_BUDGET // max(1, num_objects * cv * k))
    for start in range(0, m, block):
        idx = indices[start : start + block]  # b, k
        gathered = rows.index_select(0, idx.reshape(-1)).view(idx.shape[0], k, -1)  # b, k, K*Cv
        w = weights[start : start + block].unsqueeze(1)  # b, 1, k
        out[start : start + block] = torch.bmm(w, gathered).squeeze(1)
    return out.t().reshape(num_objects, cv, m)


def _sparse_readout(
    indices: torch.Tensor, weights: torch.Tensor, mv: torch.Tensor, n: int
) -> torch.Tensor:
    """sum_j weights[q, j] * mv[..., indices[q, j]] for every query q as CSR x dense products:
    indices/weights (M, k), mv (K,Cv,T,h,w) with T*h*w = n -> (K, Cv, M) float32, each
    object's (M, Cv) result viewed channels-last.

    One product per object, on that object's (N, Cv) rows: a view when mv is position-major
    float32 (inference_core/memory_bank.py), else a copy."""
    m, k = indices.shape
    # CSR wants each row's column indices sorted and distinct (top-k gives distinct ones)
    indices, order = torch.sort(indices, dim=1)
    weights = weights.gather(1, order)
    crow = torch.arange(0, m * k + 1, k, dtype=torch.int64, device=mv.device)
    matrix = _csr(crow, indices.reshape(-1), weights.reshape(-1), (m, n))
    out = torch.empty(mv.shape[0], m, mv.shape[1], dtype=torch.float32, device=mv.device)
    for obj, values in enumerate(mv):
        rows = values.permute(1, 2, 3, 0).float().reshape(n, -1)  # N, Cv
        out[obj] = torch.sparse.mm(matrix, rows.contiguous())
    return out.permute(0, 2, 1)


def _csr(crow, col, values, size) -> torch.Tensor:
    # PyTorch flags its CSR tensors as "beta"; the one operation used here (CSR x dense on the
    # CPU, MKL) is checked against the dense product by the tests
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


def difference_attention(
    mk: torch.Tensor, qk: torch.Tensor, pos_diff: torch.Tensor, neg_diff: torch.Tensor
) -> torch.Tensor:
    """Align the interacted frame's mask differences to a query frame (networks.md A.6).

    mk: key of the interacted frame (1,Ck,1,h,w); qk: (1,Ck,h,w); pos/neg_diff: (K+1,1,H,W).
    Returns (K+1, 2, H, W): channel 0 positive, channel 1 negative difference.
    """
    h, w = qk.shape[-2:]
    weights = torch.softmax(l2_affinity(mk, qk), dim=1)  # 1, M, M (full softmax, no top-k)
    size = pos_diff.shape[-2:]
    aligned = []
    for diff in (pos_diff, neg_diff):
        d = F.interpolate(diff, size=(h, w), mode="area").flatten(start_dim=2)  # K+1, 1, M
        aligned.append((d @ weights).view(-1, 1, h, w))
    attn = torch.cat(aligned, dim=1)
    return F.interpolate(attn, size=size, mode="bilinear", align_corners=False)
