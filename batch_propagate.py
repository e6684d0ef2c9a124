"""Propagate given masks over many videos: `python batch_propagate.py MANIFEST.jsonl`.

One JSON object per manifest line (video or images, masks, output, optional start, end,
num_objects, resolution); each item runs exactly as `python -m inference_core` would run it,
on Ray actors (one per GPU or per N cores, each loading the networks once) or in this process
(--engine local). Restartable, failures isolated, one results line per item. See
workflow/batch/cli.py and README "Batch propagation".
"""

import sys

from workflow.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
