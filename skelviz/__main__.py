import sys

from skelviz.cli import main

sys.exit(main())
