"""The workflow layer: a project (frames, objects, provenance, session, editor, saving, exports)
and the rounds that make its masks. Qt-free; the GUI, the headless command and the evaluations
drive it. Sits above inference_core/ and interact/ (siblings), below gui/."""
