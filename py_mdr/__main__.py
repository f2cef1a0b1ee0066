"""``python -m py_mdr``: the same as the ``py-mdr`` command."""

import sys

from py_mdr.cli import main

sys.exit(main())
