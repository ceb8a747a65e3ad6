"""Is the sender who the From header says? (SPEC §4, "sender authenticity")

A From header is typed by whoever sends the mail. Two decisions hang on it:

- An agent's mail is relayed to the customer from the support address and
  its `#commands` are applied. It counts as the agent's only with proof:
  addressed to that agent's own reply address for the ticket (the Reply-To
  of the agent's notices; its signature covers ticket and agent), or a
  DMARC pass / aligned DKIM pass for the agent's domain in the
  Authentication-Results of an MTA ops trust (security.trusted_authserv_ids).
  Without proof the mail is held: kept on its ticket as an internal note
  marked unverified, the agent told why, nothing relayed, nothing applied.
- A customer's mail whose DMARC result is "fail" (by a trusted MTA) is a
  forgery of that domain: held instead of threaded or opened as a ticket
  (which would answer the forged address and show the text to agents as the
  customer's).

Headers of an authserv-id nobody trusts are ignored: an attacker writes
them as easily as the From. Automatic mails (settled before this step)
never relay or apply anything, so they need no proof.
"""

from __future__ import annotations

from maildesk.mail import authres, tokens
from maildesk.types import Context, Lookup, ParsedMail, Triage


def verify_sender(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    if triage.requester is None:
        return triage
    if ctx.recovered_by is not None:  # a person looked at it and vouches for it
        return triage.but(authenticity=f"recovered from held mail by {ctx.recovered_by}")
    email = triage.requester.email
    verdict = authres.judge_sender(mail.auth_results, ctx.trusted_authserv_ids,
                                   triage.requester.domain)
    if triage.sender_role == "agent":
        return _agent(mail, triage, ctx, email, verdict)
    if verdict.verdict == "fail":
        return triage.but(action="hold", reason="dmarc_fail", authenticity=verdict.detail,
                          detail=f"{verdict.detail}: the From address {email} is forged")
    return triage.but(authenticity=verdict.detail if verdict.verdict == "pass" else "")


def _agent(mail: ParsedMail, triage: Triage, ctx: Context, email: str,
           verdict: authres.SenderVerdict) -> Triage:
    number = agent_token_ticket(mail, ctx, email)
    if number is not None and number == triage.ticket:
        return triage.but(authenticity=f"agent reply address of #{number}")
    if verdict.verdict == "pass":
        return triage.but(authenticity=verdict.detail)
    why = (f"From names the agent {email}, but the mail is not addressed to "
           f"{email}'s reply address of this ticket")
    why += (f" and {verdict.detail}" if verdict.detail and verdict.verdict == "fail"
            else " and no trusted Authentication-Results header proves the domain")
    if triage.ticket is None:
        # A new ticket opened in an agent's name relays nothing and applies
        # nothing; the acknowledgement goes to the agent's real address. It
        # is treated as any customer's mail, marked unverified.
        if verdict.verdict == "fail":
            return triage.but(action="hold", reason="dmarc_fail", detail=why,
                              authenticity=verdict.detail)
        return triage.but(sender_role="customer", authenticity=f"unverified: {why}")
    return triage.but(action="hold", reason="unverified_agent", detail=why,
                      authenticity=f"unverified: {why}")


def agent_token_ticket(mail: ParsedMail, ctx: Context, email: str) -> int | None:
    """The ticket of `email`'s own reply address among the recipients
    (envelope first: RCPT TO is what the agent's client actually sent to)."""
    for address in (*ctx.recipients, *(a.email for a in (*mail.to, *mail.cc))):
        if ctx.is_ours(address):
            number = tokens.ticket_of_agent_address(ctx.secret, address, email)
            if number is not None:
                return number
    return None
