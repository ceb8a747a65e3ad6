"""Delivery status notifications: parse_mail fills ParsedMail.report.

The builders below write bounces the way the MTAs really send them (Postfix,
Exim, qmail, Exchange / Office 365, Gmail), as bytes; tests/mail/test_loops.py
uses them too. Every builder takes the failed address and the Message-ID of
the mail that bounced, so a test can check that exactly those come back.
"""

from __future__ import annotations

from dataclasses import fields

import pytest

import maildesk.mail.dsn as dsn_module
from maildesk.mail.parse import parse_mail
from maildesk.types import DeliveryReport, ParsedMail

OUR_ID = "ticket-1001.a1b2c3@maildesk.example"


def crlf(text: str) -> bytes:
    """Text with LF line ends as CRLF bytes (how mail travels over SMTP)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def returned_headers(to: str, message_id: str = OUR_ID) -> str:
    """The header block of the mail that bounced: one of maildesk's notices."""
    return (
        "Return-Path: <support@maildesk.example>\n"
        "Received: from maildesk.example (maildesk.example [198.51.100.7])\n"
        "\tby mx.example.org (Postfix) with ESMTPS id 4Nq2Yx3VZNz9sT\n"
        f"\tfor <{to}>; Mon,  2 Nov 2026 10:00:03 +0100 (CET)\n"
        "From: Support <support@maildesk.example>\n"
        f"To: {to}\n"
        "Subject: [Ticket#1001] Ihre Anfrage\n"
        "Date: Mon, 02 Nov 2026 10:00:00 +0100\n"
        f"Message-ID: <{message_id}>\n"
        "Auto-Submitted: auto-generated\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
    )


def returned_message(to: str, message_id: str = OUR_ID) -> str:
    return returned_headers(to, message_id) + "\nGuten Tag,\n\nwir haben Ihre Anfrage erhalten.\n"


# --------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------


def postfix_bounce(
    to: str = "nobody@kunde.de",
    message_id: str = OUR_ID,
    *,
    headers_only: bool = False,
    action: str = "failed",
    status: str = "5.1.1",
) -> bytes:
    """Postfix bounce(8): text, message/delivery-status, the returned mail."""
    returned = (
        "Content-Description: Undelivered Message Headers\n"
        "Content-Type: text/rfc822-headers\n\n" + returned_headers(to, message_id)
        if headers_only
        else "Content-Description: Undelivered Message\n"
        "Content-Type: message/rfc822\n"
        "Content-Transfer-Encoding: 8bit\n\n" + returned_message(to, message_id)
    )
    boundary = "4Nq2Yx3VZNz9sT.1793610005/mx.example.org"
    return f"""Return-Path: <>
Received: by mx.example.org (Postfix)
\tid 4Nq2Yx3VZNz9sT; Mon,  2 Nov 2026 10:00:05 +0100 (CET)
Date: Mon,  2 Nov 2026 10:00:05 +0100 (CET)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: support@maildesk.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Content-Transfer-Encoding: 8bit
Message-Id: <20261102090005.4Nq2Yx3VZNz9sT@mx.example.org>

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{to}>: host mx.kunde.de[192.0.2.25] said: 550 {status}
    <{to}>: Recipient address rejected: User unknown in virtual mailbox
    table (in reply to RCPT TO command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 4Nq2Yx3VZNz9sT
X-Postfix-Sender: rfc822; support@maildesk.example
Arrival-Date: Mon,  2 Nov 2026 10:00:03 +0100 (CET)

Final-Recipient: rfc822; {to}
Original-Recipient: rfc822;{to.upper()}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.kunde.de
Diagnostic-Code: smtp; 550 {status} <{to}>: Recipient address rejected: User
    unknown in virtual mailbox table

--{boundary}
{returned}
--{boundary}--
""".encode()


def postfix_delay_warning(to: str = "slow@kunde.de", message_id: str = OUR_ID) -> bytes:
    """Postfix delay_warning_time notice: Action delayed, nothing failed."""
    boundary = "4Nq3Ab1CdEz9sT.1793624405/mx.example.org"
    return crlf(f"""Return-Path: <>
Date: Mon,  2 Nov 2026 14:00:05 +0100 (CET)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: support@maildesk.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Message-Id: <20261102130005.4Nq3Ab1CdEz9sT@mx.example.org>

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

Your message could not be delivered for more than 4 hour(s).
It will be retried until it is 5 day(s) old.

<{to}>: connect to mx.kunde.de[192.0.2.25]:25: Connection timed out

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Mon,  2 Nov 2026 10:00:03 +0100 (CET)

Final-Recipient: rfc822; {to}
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.kunde.de[192.0.2.25]:25: Connection
    timed out
Will-Retry-Until: Sat,  7 Nov 2026 10:00:03 +0100 (CET)

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{returned_headers(to, message_id)}
--{boundary}--
""")


def postfix_text_bounce(to: str = "nobody@kunde.de", message_id: str = OUR_ID) -> bytes:
    """Postfix's notification text alone (report parts stripped on the way)."""
    return crlf(f"""Return-Path: <>
Date: Mon,  2 Nov 2026 10:00:05 +0100 (CET)
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
Subject: Undelivered Mail Returned to Sender
To: support@maildesk.example
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<{to}> (expanded from <info@kunde.de>): host mx.kunde.de[192.0.2.25] said:
    550 5.2.2 <{to}>: Recipient address rejected: Mailbox full (in reply to
    RCPT TO command)

{returned_message(to, message_id)}""")


def exim_bounce(
    to: str = "gone@kunde.de",
    message_id: str = OUR_ID,
    *,
    also: tuple[str, ...] = (),
    failed_header: bool = False,
) -> bytes:
    """Exim's classic plain-text bounce with the returned message inline."""
    recipients = (to, *also)
    failed = "".join(
        f"  {address}\n"
        "    host mx.kunde.de [192.0.2.30]\n"
        f"    SMTP error from remote mail server after RCPT TO:<{address}>:\n"
        f"    550 5.1.1 <{address}>: Recipient address rejected: User unknown\n"
        for address in recipients
    )
    extra = f"X-Failed-Recipients: {', '.join(recipients)}\n" if failed_header else ""
    return crlf(f"""Return-path: <>
Envelope-to: support@maildesk.example
Received: from Debian-exim by mail.example.net with local (Exim 4.96)
\tid 1tA2b3-000Xyz-Ab
\tfor support@maildesk.example; Mon, 02 Nov 2026 10:00:05 +0100
{extra}Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@mail.example.net>
To: support@maildesk.example
Content-Type: text/plain; charset=us-ascii
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1tA2b3-000Xyz-Ab@mail.example.net>
Date: Mon, 02 Nov 2026 10:00:05 +0100

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

{failed}
------ This is a copy of the message, including all the headers. ------

{returned_message(to, message_id)}""")


def exim_delay_warning(to: str = "slow@kunde.de", message_id: str = OUR_ID) -> bytes:
    """Exim's plain-text delay warning: still queued, nothing failed."""
    return crlf(f"""Return-path: <>
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@mail.example.net>
To: support@maildesk.example
Subject: Warning: message 1tA2b3-000Xyz-Ab delayed 24 hours
Message-Id: <E1tB9x1-0001aa-Cd@mail.example.net>
Date: Tue, 03 Nov 2026 10:00:05 +0100
Content-Type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mail.example.net.

The message identifier is:     1tA2b3-000Xyz-Ab
The subject of the message is: [Ticket#1001] Ihre Anfrage
The date of the message is:    Mon, 02 Nov 2026 10:00:00 +0100

The address to which the message has not yet been delivered is:

  {to}
    Delay reason: SMTP error from remote mail server after RCPT TO:<{to}>:
    451 4.7.1 Greylisted, please try again later

No action is required on your part. Delivery attempts will continue for
some time, and this warning may be repeated at intervals if the message
remains undelivered. Eventually the mail delivery software will give up,
and when that happens, the message will be returned to you.
""")


def qmail_bounce(to: str = "gone@kunde.de", message_id: str = OUR_ID) -> bytes:
    """qmail-send's bounce: addresses as "<addr>:" lines, copy below a marker."""
    return crlf(f"""Return-Path: <>
Received: (qmail 12345 invoked for bounce); 2 Nov 2026 09:00:05 -0000
Date: 2 Nov 2026 09:00:05 -0000
From: MAILER-DAEMON@mail.example.com
To: support@maildesk.example
Subject: failure notice

Hi. This is the qmail-send program at mail.example.com.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{to}>:
192.0.2.40 does not like recipient.
Remote host said: 550 5.1.1 <{to}>... User unknown
Giving up on 192.0.2.40.

--- Below this line is a copy of the message.

{returned_message(to, message_id)}""")


EXCHANGE_SENDER = "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@firma.de>"


def exchange_ndr(to: str = "max.mustermann@firma.de", message_id: str = OUR_ID) -> bytes:
    """Exchange 2016 NDR: multipart/report with an alternative, DSN and headers."""
    return crlf(f"""From: {EXCHANGE_SENDER}
To: <support@maildesk.example>
Date: Mon, 2 Nov 2026 09:00:02 +0000
Subject: Undeliverable: [Ticket#1001] Ihre Anfrage
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="_000_3f1b2c4d5e6f7a8b9c0d_"
Content-Language: en-US
Message-ID: <3f1b2c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d@EXCH01.firma.local>
In-Reply-To: <{message_id}>
References: <{message_id}>
Thread-Topic: [Ticket#1001] Ihre Anfrage
X-MS-Has-Attach: yes
X-MS-Exchange-Message-Is-Ndr:
X-MS-TNEF-Correlator:
MIME-Version: 1.0

--_000_3f1b2c4d5e6f7a8b9c0d_
Content-Type: multipart/alternative;
\tboundary="_002_3f1b2c4d5e6f7a8b9c0d_"

--_002_3f1b2c4d5e6f7a8b9c0d_
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

Max Mustermann ({to})
The e-mail address you entered couldn't be found. Please check the recipient's
e-mail address and try to resend the message. If the problem continues, please
contact your helpdesk.

Diagnostic information for administrators:

Generating server: EXCH01.firma.local

{to}
#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##

Original message headers:

{returned_headers(to, message_id)}
--_002_3f1b2c4d5e6f7a8b9c0d_
Content-Type: text/html; charset="us-ascii"

<html><body><p><b><font color="#000066" size="3" face="Arial">Delivery has
failed to these recipients or groups:</font></b></p>
<p><a href="mailto:{to}">Max Mustermann ({to})</a><br>The e-mail address you
entered couldn't be found.</p></body></html>

--_002_3f1b2c4d5e6f7a8b9c0d_--

--_000_3f1b2c4d5e6f7a8b9c0d_
Content-Type: message/delivery-status

Reporting-MTA: dns;EXCH01.firma.local
Received-From-MTA: dns;mx.firma.de
Arrival-Date: Mon, 2 Nov 2026 09:00:01 +0000

Final-Recipient: rfc822;{to}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found
X-Display-Name: Max Mustermann

--_000_3f1b2c4d5e6f7a8b9c0d_
Content-Type: text/rfc822-headers

{returned_headers(to, message_id)}
--_000_3f1b2c4d5e6f7a8b9c0d_--
""")


def exchange_german_text_ndr(
    to: str = "erika.beispiel@firma.de", message_id: str = OUR_ID
) -> bytes:
    """An older Exchange NDR in German, as plain text only (no report parts)."""
    return crlf(f"""Return-Path: <>
From: postmaster@firma.de
To: support@maildesk.example
Date: Mon, 2 Nov 2026 09:00:02 +0000
Subject: Unzustellbar: [Ticket#1001] Ihre Anfrage
Message-ID: <a1b2c3d4e5@EXCH02.firma.local>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

Die Übermittlung an folgende Empfänger oder Gruppen ist fehlgeschlagen:

{to}
Die eingegebene E-Mail-Adresse wurde nicht gefunden. Überprüfen Sie die
E-Mail-Adresse des Empfängers, und versuchen Sie dann erneut, die Nachricht zu
senden. Wenden Sie sich an Ihr Helpdesk, falls das Problem weiterhin besteht.

Diagnoseinformationen für Administratoren:

Generierender Server: EXCH02.firma.local

{to}
#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##

Ursprüngliche Nachrichtenkopfzeilen:

{returned_headers(to, message_id)}""")


def office365_html_ndr(to: str = "p.schulz@firma.de", message_id: str = OUR_ID) -> bytes:
    """An Office 365 NDR in German that arrived as HTML only."""
    local, _, domain = to.partition("@")
    return crlf(f"""From: {EXCHANGE_SENDER.replace("firma.de", "firma.onmicrosoft.com")}
To: <support@maildesk.example>
Date: Mon, 2 Nov 2026 09:00:02 +0000
Subject: =?utf-8?Q?Unzustellbar:_[Ticket#1001]_Ihre_Anfrage?=
Message-ID: <b2c3d4e5-f6a7@AM0PR10MB1234.EURPRD10.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: 8bit

<html><body>
<p>Ihre Nachricht an <a href="mailto:{to}">{to}</a> konnte nicht
&uuml;bermittelt werden.</p>
<p>{local} wurde bei {domain} nicht gefunden.</p>
<p>Diagnoseinformationen f&uuml;r Administratoren:</p>
<p>Generierender Server: AM0PR10MB1234.EURPRD10.PROD.OUTLOOK.COM</p>
<p>{to}<br>Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound;
Recipient not found by SMTP address lookup'</p>
<p>Urspr&uuml;ngliche Nachrichtenkopfzeilen:</p>
<pre>Received: from AM0PR10MB1234.EURPRD10.PROD.OUTLOOK.COM
From: Support &lt;support@maildesk.example&gt;
To: {to}
Message-ID: &lt;{message_id}&gt;
</pre></body></html>
""")


def gmail_bounce(
    to: str = "nobody@kunde.de", message_id: str = OUR_ID, *, returned: str = "message"
) -> bytes:
    """Gmail's DSN: related/alternative text, delivery-status, the original.

    returned: "message" (message/rfc822), "headers" (text/rfc822-headers) or
    "none" (then only X-Original-Message-ID names the original).
    """
    if returned == "message":
        original = "Content-Type: message/rfc822\n\n" + returned_message(to, message_id)
    elif returned == "headers":
        original = "Content-Type: text/rfc822-headers\n\n" + returned_headers(to, message_id)
    else:
        original = ""
    original_part = f"--000000000000a1b2c3\n{original}\n" if original else ""
    return crlf(f"""Delivered-To: support@maildesk.example
Return-Path: <>
Received: by 2002:a05:6a10:1234:b0:5a1:2b3c:4d5e with SMTP id abc123;
        Mon, 02 Nov 2026 01:00:02 -0800 (PST)
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: support@maildesk.example
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: <{message_id}>
In-Reply-To: <{message_id}>
X-Failed-Recipients: {to}
Message-ID: <65432a1b.050a0220.3c4d5.1234.GMR@mx.google.com>
Date: Mon, 02 Nov 2026 01:00:02 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3"; report-type=delivery-status

--000000000000a1b2c3
Content-Type: multipart/related; boundary="000000000000d4e5f6"

--000000000000d4e5f6
Content-Type: multipart/alternative; boundary="000000000000a7b8c9"

--000000000000a7b8c9
Content-Type: text/plain; charset="UTF-8"


** Address not found **

Your message wasn't delivered to {to} because the address couldn't be found, or
is unable to receive mail.

Learn more here: https://support.google.com/mail/?p=NoSuchUser

The response from the remote server was:
550 5.1.1 <{to}>: Recipient address rejected: User unknown

--000000000000a7b8c9
Content-Type: text/html; charset="UTF-8"

<html><body><h2>Address not found</h2><p>Your message wasn't delivered to
<b>{to}</b> because the address couldn't be found.</p>
<img src="cid:icon.png"></body></html>

--000000000000a7b8c9--
--000000000000d4e5f6
Content-Type: image/png; name="icon.png"
Content-Disposition: attachment; filename="icon.png"
Content-Transfer-Encoding: base64
Content-ID: <icon.png>

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==
--000000000000d4e5f6--
--000000000000a1b2c3
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; agent@gmail.com
Arrival-Date: Mon, 02 Nov 2026 01:00:01 -0800 (PST)
X-Original-Message-ID: <{message_id}>

Final-Recipient: rfc822; {to}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.kunde.de. (192.0.2.50, the server for the domain kunde.de.)
Diagnostic-Code: smtp; 550 5.1.1 <{to}>: Recipient address rejected: User unknown
Last-Attempt-Date: Mon, 02 Nov 2026 01:00:02 -0800 (PST)

{original_part}--000000000000a1b2c3--
""")


def read_receipt(message_id: str = OUR_ID) -> bytes:
    """An RFC 8098 MDN (Thunderbird style): multipart/report, not a bounce."""
    return crlf(f"""Return-Path: <>
From: Erika Mustermann <erika@kunde.de>
To: support@maildesk.example
Subject: Lesebestätigung (angezeigt) - [Ticket#1001] Ihre Anfrage
Date: Mon, 2 Nov 2026 11:00:00 +0100
Message-ID: <mdn-1@kunde.de>
MIME-Version: 1.0
Content-Type: multipart/report; report-type="disposition-notification";
\tboundary="------------mdnBoundary"

--------------mdnBoundary
Content-Type: text/plain; charset=UTF-8

Dies ist eine Empfangsbestätigung für Ihre Nachricht an erika@kunde.de.
Hinweis: Diese Empfangsbestätigung sagt nur aus, dass die Nachricht angezeigt
wurde.

--------------mdnBoundary
Content-Type: message/disposition-notification

Reporting-UA: kunde.de; Thunderbird 128.3.0
Final-Recipient: rfc822;erika@kunde.de
Original-Message-ID: <{message_id}>
Disposition: manual-action/MDN-sent-manually; displayed

--------------mdnBoundary
Content-Type: text/rfc822-headers

{returned_headers("erika@kunde.de", message_id)}
--------------mdnBoundary--
""")


def ordinary_mail() -> bytes:
    return crlf("""Return-Path: <erika@kunde.de>
From: Erika Mustermann <erika@kunde.de>
To: support@maildesk.example
Subject: Drucker im 2. OG druckt nicht
Date: Mon, 2 Nov 2026 11:00:00 +0100
Message-ID: <normal-1@kunde.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hallo, der Drucker druckt seit heute nicht mehr. Gruß Erika
""")


# --------------------------------------------------------------------------
# the reports
# --------------------------------------------------------------------------


def report_of(raw: bytes) -> DeliveryReport:
    mail = parse_mail(raw)
    assert mail.report is not None, mail.problems
    return mail.report


BOUNCES = {
    "postfix": (postfix_bounce, ("nobody@kunde.de",), "5.1.1"),
    "postfix-headers-only": (
        lambda to, message_id: postfix_bounce(to, message_id, headers_only=True),
        ("nobody@kunde.de",),
        "5.1.1",
    ),
    "postfix-text": (postfix_text_bounce, ("nobody@kunde.de", "info@kunde.de"), "5.2.2"),
    "exim": (exim_bounce, ("gone@kunde.de",), "5.1.1"),
    "qmail": (qmail_bounce, ("gone@kunde.de",), "5.1.1"),
    "exchange": (exchange_ndr, ("max.mustermann@firma.de",), "5.1.1"),
    "exchange-german-text": (exchange_german_text_ndr, ("erika.beispiel@firma.de",), "5.1.1"),
    "office365-html": (office365_html_ndr, ("p.schulz@firma.de",), "5.1.10"),
    "gmail": (gmail_bounce, ("nobody@kunde.de",), "5.1.1"),
    "gmail-headers": (
        lambda to, message_id: gmail_bounce(to, message_id, returned="headers"),
        ("nobody@kunde.de",),
        "5.1.1",
    ),
}


@pytest.mark.parametrize("name", BOUNCES)
def test_bounce_names_failed_recipient_and_original(name: str) -> None:
    build, failed, status = BOUNCES[name]
    report = report_of(build(failed[0], f"{name}-42@maildesk.example"))
    assert report.failed == failed
    assert report.delayed == ()
    assert report.original_message_id == f"{name}-42@maildesk.example"
    assert report.status == status


def test_addresses_are_lower_case_without_type_prefix() -> None:
    """Original-Recipient "rfc822;NOBODY@KUNDE.DE" comes out as the address."""
    report = report_of(postfix_bounce("nobody@kunde.de"))
    assert report.failed == ("nobody@kunde.de",)
    assert all(a == a.lower() and ";" not in a and "<" not in a for a in report.failed)


def test_original_recipient_is_kept_next_to_the_final_one() -> None:
    """After alias expansion the final recipient is not what we sent to."""
    raw = postfix_bounce("max@kunde.de").replace(
        b"Original-Recipient: rfc822;MAX@KUNDE.DE", b"Original-Recipient: rfc822;Info@Kunde.de"
    )
    assert report_of(raw).failed == ("info@kunde.de", "max@kunde.de")


def test_content_type_of_a_dsn() -> None:
    assert parse_mail(postfix_bounce()).content_type == "multipart/report"


def test_several_failed_recipients_in_exim_text() -> None:
    report = report_of(exim_bounce("a@kunde.de", also=("b@kunde.de",)))
    assert report.failed == ("a@kunde.de", "b@kunde.de")


def test_the_returned_copy_is_not_read_as_failed_recipients() -> None:
    """Our own From address in the returned copy is no failed recipient."""
    for raw in (exim_bounce("gone@kunde.de"), qmail_bounce(), exchange_german_text_ndr()):
        assert "support@maildesk.example" not in report_of(raw).failed


def test_addresses_in_the_returned_body_are_not_failed_recipients() -> None:
    """The returned copy quotes the customer, signature lines included."""
    raw = exim_bounce("gone@kunde.de").replace(
        b"wir haben Ihre Anfrage erhalten.\r\n",
        b"wir haben Ihre Anfrage erhalten.\r\n\r\n> Gruss\r\n  erika.privat@kunde.de\r\n",
    )
    assert report_of(raw).failed == ("gone@kunde.de",)


def test_the_bounce_senders_own_address_is_no_failed_recipient() -> None:
    """An NDR that names its sender as the contact for questions."""
    raw = exchange_german_text_ndr("erika.beispiel@firma.de").replace(
        b"Diagnoseinformationen",
        b"Bei Fragen wenden Sie sich an:\r\npostmaster@firma.de\r\n\r\nDiagnoseinformationen",
    )
    assert report_of(raw).failed == ("erika.beispiel@firma.de",)


def test_overlong_and_too_many_addresses_are_dropped() -> None:
    """RFC 5321 paths have at most 256 octets; a hostile text gets no more."""
    long_address = "x" * 250 + "@kunde.de"
    assert report_of(exim_bounce(long_address)).failed == ()
    many = tuple(f"user{i}@kunde.de" for i in range(150))
    report = report_of(exim_bounce(many[0], also=many[1:]))
    assert report.failed == many[:100]


def test_x_failed_recipients_header() -> None:
    """Exim names the failed addresses in a header as well."""
    raw = exim_bounce("gone@kunde.de", failed_header=True).replace(b"  gone@kunde.de\r\n", b"")
    assert report_of(raw).failed == ("gone@kunde.de",)


def test_gmail_without_returned_message_uses_x_original_message_id() -> None:
    report = report_of(gmail_bounce(message_id="only-here@maildesk.example", returned="none"))
    assert report.original_message_id == "only-here@maildesk.example"
    assert report.failed == ("nobody@kunde.de",)


def test_delayed_only_dsn() -> None:
    report = report_of(postfix_delay_warning("slow@kunde.de"))
    assert report.delayed == ("slow@kunde.de",)
    assert report.failed == ()
    assert report.status == "4.4.1"
    assert report.original_message_id == OUR_ID


def test_exim_delay_warning_text() -> None:
    report = report_of(exim_delay_warning("slow@kunde.de"))
    assert report.delayed == ("slow@kunde.de",)
    assert report.failed == ()
    assert report.status == "4.7.1"


def test_mixed_dsn_sorts_recipients_by_action() -> None:
    """One failed, one delayed, one delivered: each where it belongs, and the
    status is that of the failed recipient, not of the delivered one."""
    raw = postfix_bounce("gone@kunde.de").replace(
        b"Final-Recipient: rfc822; gone@kunde.de",
        b"Final-Recipient: rfc822; ok@kunde.de\nAction: delivered\nStatus: 2.0.0\n\n"
        b"Final-Recipient: rfc822; later@kunde.de\nAction: delayed\nStatus: 4.2.2\n\n"
        b"Final-Recipient: rfc822; gone@kunde.de",
    )
    report = report_of(raw)
    assert report.failed == ("gone@kunde.de",)
    assert report.delayed == ("later@kunde.de",)
    assert report.status == "4.2.2"


def test_success_dsn_has_a_report_without_failures() -> None:
    """NOTIFY=SUCCESS reports: a DSN, but nobody failed; the text is not
    searched for addresses when the machine-readable part lists them."""
    raw = postfix_bounce("ok@kunde.de", action="delivered", status="2.0.0")
    report = report_of(raw)
    assert (report.failed, report.delayed, report.status) == ((), (), "2.0.0")


def test_global_delivery_status_is_read_as_text() -> None:
    """RFC 6533 message/global-delivery-status is not split by the stdlib."""
    raw = (
        postfix_bounce("müller@kunde.de")
        .replace(
            b"Content-Type: message/delivery-status",
            b"Content-Type: message/global-delivery-status",
        )
        .replace(b"report-type=delivery-status", b"report-type=global-delivery-status")
    )
    assert report_of(raw).failed == ("müller@kunde.de",)


def test_read_receipt_is_no_delivery_report() -> None:
    mail = parse_mail(read_receipt())
    assert mail.report is None
    assert mail.content_type == "multipart/report"


def test_read_receipt_about_an_undeliverable_parcel_is_no_bounce() -> None:
    """Null sender and bounce wording in the subject, but a receipt."""
    raw = read_receipt().replace(
        b"[Ticket#1001] Ihre Anfrage", b"[Ticket#1001] Paket undeliverable zurueck"
    )
    assert parse_mail(raw).report is None


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (ordinary_mail(), "text/plain"),
        (
            ordinary_mail()
            .replace(
                b"Content-Type: text/plain; charset=utf-8\r\n",
                b'Content-Type: multipart/mixed; boundary="b"\r\n',
            )
            .replace(
                b"Hallo,",
                b"--b\r\nContent-Type: text/plain\r\n\r\nHallo,",
            )
            + b"--b--\r\n",
            "multipart/mixed",
        ),
    ],
)
def test_normal_mail_has_no_report(raw: bytes, content_type: str) -> None:
    mail = parse_mail(raw)
    assert mail.report is None
    assert mail.content_type == content_type


def test_customer_forwarding_a_bounce_is_no_bounce() -> None:
    """A person pasting a bounce into a mail to support is not a bounce."""
    pasted = exim_bounce("gone@kunde.de").split(b"\r\n\r\n", 1)[1]
    headers = ordinary_mail().split(b"\r\n\r\n", 1)[0]
    raw = headers + b"\r\n\r\nWas heisst das?\r\n\r\n" + pasted
    assert parse_mail(raw).report is None


def test_postmaster_mail_that_is_no_bounce() -> None:
    raw = crlf("""From: postmaster@kunde.de
To: support@maildesk.example
Subject: Wartungsarbeiten am Mailserver
Content-Type: text/plain; charset=utf-8

Am Samstag ist der Mailserver von 8 bis 10 Uhr nicht erreichbar.
""")
    assert parse_mail(raw).report is None


def test_no_report_parts_but_returned_mail_headers_only() -> None:
    """multipart/report read with headers only (body unreadable): no crash."""
    raw = postfix_bounce().split(b"\n\n", 1)[0] + b"\n\n"
    mail = parse_mail(raw)
    assert mail.content_type == "multipart/report"
    assert mail.report == DeliveryReport()


def test_returned_message_id_without_angle_brackets() -> None:
    report = report_of(exim_bounce(message_id="with.dots+plus@maildesk.example"))
    assert report.original_message_id == "with.dots+plus@maildesk.example"


# --------------------------------------------------------------------------
# never raises, never slows ordinary mail down
# --------------------------------------------------------------------------


def _all_strings(value: object) -> list[str]:
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, f.name) for f in fields(item))
    return found


ALL_BUILT = [build(failed[0], OUR_ID) for build, failed, _ in BOUNCES.values()] + [
    postfix_delay_warning(),
    exim_delay_warning(),
    read_receipt(),
]


@pytest.mark.parametrize("raw", ALL_BUILT)
def test_truncated_and_mangled_bounces_never_raise(raw: bytes) -> None:
    variants = [raw[:cut] for cut in range(0, len(raw), max(1, len(raw) // 40))]
    variants += [
        raw.replace(b"Action:", b"Action"),
        raw.replace(b"rfc822;", b"rfc822;\x00\xff"),
        raw.replace(b"Final-Recipient:", b"Final-Recipient: utf-8;<\xff\xfe@x>"),
        raw.replace(b"delivery-status", b"delivery-status\r\nContent-Transfer-Encoding: base64"),
    ]
    for variant in variants:
        mail = parse_mail(variant)
        assert isinstance(mail, ParsedMail)
        for text in _all_strings(mail):
            text.encode("utf-8")
            assert "\x00" not in text


def test_a_failing_report_reader_costs_only_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> None:
        raise RecursionError("boom")

    monkeypatch.setattr(dsn_module, "_delivery_report", explode)
    mail = parse_mail(postfix_bounce())
    assert mail.report is None
    assert mail.subject == "Undelivered Mail Returned to Sender"
    assert any("delivery report unreadable" in p for p in mail.problems)


def test_ordinary_mail_never_reaches_the_report_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keeps parsing fast: ordinary mail stops at the cheap sender check."""

    def forbidden(*args: object) -> None:
        raise AssertionError("walked an ordinary mail for a report")

    monkeypatch.setattr(dsn_module, "_report_parts", forbidden)
    monkeypatch.setattr(dsn_module, "_text_bounce", forbidden)
    mail = parse_mail(ordinary_mail())
    assert mail.report is None and not mail.problems
