"""The engine: frames, results, memory, propagation and fusion. No Qt, no interaction logic.

Public API: Session, InferenceConfig, index_mask_to_prob (inference_core/api.py) and the frame
sources in inference_core/frames.py. Rounds over annotated frames, saving and provenance are the
workflow layer's (workflow/). `python -m inference_core --help` is the headless command.
"""
