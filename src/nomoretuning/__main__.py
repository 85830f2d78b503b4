"""``python -m nomoretuning``: the command line."""

import sys

from nomoretuning.cli.main import main

sys.exit(main())
