"""What people do to tickets and held mail (agents, customers, release
publishing), shared by the CLI, mail commands and the web pages. Each
action opens its own transaction."""
