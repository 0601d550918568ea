import sys

from bootgpu.cli import main

sys.exit(main())
