"""Stage 2, Process: a committed inbound row becomes ticket rows.

`service` claims and processes rows in one transaction per mail, `pipeline`
holds the pure decision steps, `drainer` feeds serve's processor pool and
picks up rows left pending, `faults` says whose fault a failure is."""
