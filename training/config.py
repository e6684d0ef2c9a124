"""Per-stage defaults from the original training recipes, and the frozen run configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

SEED = 14159265  # torch, numpy and random, as in every original repository
WEIGHT_DECAY = 1e-7
LR_GAMMA = 0.1


@dataclass(frozen=True)
class StageDefaults:
    """What the original used for one stage (batch size is per GPU/process)."""

    iterations: int
    lr_steps: tuple[int, ...]
    lr: float
    batch_size: int
    crop: int
    bce_start: int
    bce_end: int
    s2m_bce: bool = False
    amp: bool = True
    save_every: int = 50_000
    log_every: int = 100


STAGES = MappingProxyType(
    {
        # STCN stage 0: static images, 300K iterations, LR step at 150K.
        "static": StageDefaults(300_000, (150_000,), 1e-5, 8, 384, 20_000, 70_000),
        # STCN stage 2 (DAVIS + YouTube-VOS); stage 3 (no BL30K) is --iterations 150000
        # --lr_steps 125000.
        "main": StageDefaults(300_000, (250_000,), 1e-5, 4, 384, 20_000, 70_000),
        # S2M: no LR steps, fp32, BN in train mode.
        "s2m": StageDefaults(80_000, (), 1e-4, 16, 480, 10_000, 30_000, True, False, 20_000, 50),
        # MiVOS fusion stage 1 (DAVIS); bce start/end are 0.2 / 0.5 of the run (set at build).
        "fusion": StageDefaults(10_000, (7_500,), 1e-4, 12, 384, -1, -1, False, True, 5_000),
    }
)


@dataclass(frozen=True)
class TrainConfig:
    """One training run, built once from the command line."""

    stage: str
    data: tuple[str, ...]
    output: str
    iterations: int
    lr_steps: tuple[int, ...]
    lr: float
    batch_size: int
    crop: int
    bce_start: int
    bce_end: int
    amp: bool
    save_every: int
    log_every: int
    num_workers: int = 0
    resume: str | None = None
    load_network: str | None = None
    prop_model: str | None = None  # fusion: the propagation network that generates its data
    fusion_data: str | None = None  # fusion: existing generated data (else generated here)
    skip_scale: float = 1.0  # 0.2 for YouTube-VOS, annotated every 5th frame
    device: str = "auto"
    seed: int = SEED
    name: str = field(default="")

    @property
    def run_name(self) -> str:
        """File-name prefix of every checkpoint of this run."""
        return self.name or self.stage
