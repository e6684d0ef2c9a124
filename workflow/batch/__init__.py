"""Batch propagation: many (video, first masks) items through the headless workflow.

`python batch_propagate.py MANIFEST.jsonl` (see README "Batch propagation"). The pieces:

- manifest.py: the manifest (one JSON object per line) read and checked before any work.
- records.py: each item's input fingerprint and its completion record (restartable runs).
- worker.py: a worker that loads the networks once and runs items one after another
  through workflow.headless.propagate_item (the command's own steps, same bytes out).
- engines.py: the in-process engine and the Ray engine (actors, one per GPU or per N cores).
- cli.py: the command line, the progress bar, the results file and the summary.
"""
