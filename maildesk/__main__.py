"""`python -m maildesk` runs the CLI."""

from maildesk.cli.app import main

main()
