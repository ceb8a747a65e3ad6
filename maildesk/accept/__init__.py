"""Stage 1, Accept: a mail from SMTP/LMTP, IMAP, the pipe or an import is
committed as an inbound row (raw bytes, dedup key) before anyone is told
"taken". Nothing here parses beyond the envelope or writes a ticket."""
