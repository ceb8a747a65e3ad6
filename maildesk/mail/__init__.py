"""Pure knowledge of the mail format: parsing, automatic-mail detection,
Authentication-Results, quoting, tokens in addresses, safe HTML and file
names. No database, no network: every function is over bytes or plain data."""
