"""``python -m eegcodec.cli``: the ``eegcodec`` command (``--jobs`` children and benchmarks run it so)."""

import sys

from . import main

sys.exit(main())
