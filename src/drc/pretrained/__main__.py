"""`python -m drc.pretrained export --run RUN --scenario stickers`."""

import sys

from drc.pretrained import main

sys.exit(main())
