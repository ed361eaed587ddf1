"""`python -m ffo` is the `ffo` command."""

import sys

from ffo.cli.main import main

sys.exit(main())
