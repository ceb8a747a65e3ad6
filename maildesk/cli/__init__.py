"""The `maildesk` command line: `app` holds the click group, `common` what
every command shares, `mail`, `tickets` and `ops` the commands, `check`
the installation checks. The tables and JSON it prints are maildesk/views.py
(shared with the HTTP API)."""
