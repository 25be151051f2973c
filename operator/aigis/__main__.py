"""`python -m aigis` is the `aigis` command."""

from aigis.cli import main

main()
