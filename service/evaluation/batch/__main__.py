"""``python -m service.evaluation.batch``: the batch evaluation job's command line."""

import sys

from service.evaluation.batch.cli import main

sys.exit(main())
