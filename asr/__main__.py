"""`python -m asr ...` is `asr ...`; torchrun starts training this way: `torchrun --nproc-per-node N -m asr train CONFIG`."""

import sys

from asr.cli import main

if __name__ == "__main__":
    sys.exit(main())
