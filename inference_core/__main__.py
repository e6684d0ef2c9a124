"""`python -m inference_core`: the headless propagation command (see workflow/headless.py).

A program, not a library module: it runs the workflow layer above this package (the command
line predates that layer and is kept), and nothing imports it.
"""

import sys

from workflow.headless import main

if __name__ == "__main__":
    sys.exit(main())
