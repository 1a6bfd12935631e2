"""`python -m landmarks.tfjob`: see `landmarks.tfjob.cli`."""

import sys

from landmarks.tfjob.cli import main

if __name__ == "__main__":
    sys.exit(main())
