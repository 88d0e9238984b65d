import sys

from kgrec.cli.main import main

sys.exit(main())
