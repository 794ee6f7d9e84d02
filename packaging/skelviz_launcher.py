"""Entry point of the desktop bundle: the same as the ``skelviz`` command (app without arguments, CLI with)."""

import sys

from skelviz.cli import main

if __name__ == "__main__":
    sys.exit(main())
