"""`python -m drc` (and `torchrun -m drc`) behave exactly like the `drc` console script."""

from drc.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
