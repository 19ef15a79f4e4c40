"""`python -m bot.cli` runs the flowbot command line."""

import sys

from bot.cli import main

sys.exit(main())
