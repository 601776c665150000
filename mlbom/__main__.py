"""`python -m mlbom`."""

from mlbom.cli import main

main()
