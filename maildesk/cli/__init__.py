"""The `maildesk` command line: `app` holds the click group and commands,
`check` the installation checks, `views` the tables and JSON it prints."""
