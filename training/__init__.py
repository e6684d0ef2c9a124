"""Training the propagation (STCN), S2M and fusion networks (evaluation_and_training.md §4).

Entry point: the root `train.py`. Everything here runs single-process on the CPU for debugging
and under `torchrun` (DistributedDataParallel) for real training.
"""
