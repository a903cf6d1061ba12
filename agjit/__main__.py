"""``python -m agjit``: the ``agjit`` command line (see :mod:`agjit.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
