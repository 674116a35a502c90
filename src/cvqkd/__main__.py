"""``python -m cvqkd`` runs the command line."""

from cvqkd.cli.main import main

main()
