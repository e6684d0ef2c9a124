"""f-BRS click-to-mask (clicks_fbrs.md): the network, its checkpoint, BRS and the click session."""

from __future__ import annotations

from model.fbrs.clicks import Click
from model.fbrs.controller import ClickController
from model.fbrs.load import load_fbrs
from model.fbrs.network import FBRSNetwork
from model.fbrs.predictor import FBRSPredictor

__all__ = ["Click", "ClickController", "FBRSNetwork", "FBRSPredictor", "load_fbrs"]
