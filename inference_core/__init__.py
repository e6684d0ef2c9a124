"""The engine: frames, results, memory, propagation and fusion. No Qt, no interaction logic.

Public API: Session, InferenceConfig, propagate_from_masks (see inference_core/api.py) and the
frame sources in inference_core/frames.py. `python -m inference_core --help` is the headless CLI.
"""
