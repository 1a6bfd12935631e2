"""`python -m landmarks.train`: see `landmarks.train.cli`."""

import sys

from landmarks.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
