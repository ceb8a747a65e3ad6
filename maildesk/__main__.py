"""`python -m maildesk` runs the CLI."""

from maildesk.cli import main

main()
