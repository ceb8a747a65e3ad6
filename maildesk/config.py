"""maildesk.toml -> frozen settings, with environment overrides.

Ops get one file plus `MAILDESK_<SECTION>__<KEY>` / `MAILDESK_<KEY>`
variables (so systemd's EnvironmentFile can carry secrets). Every error
names the key and where its value came from, because "invalid config" alone
sends people guessing.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from maildesk.errors import PermanentError

REQUEST_TYPES = ("user_help", "incident", "product_request", "urgent")
PRIORITIES = ("low", "normal", "high")
#: SPEC §3: the priority a request type brings unless set explicitly.
PRIORITY_FOR_TYPE = {
    "user_help": "low",
    "incident": "normal",
    "product_request": "normal",
    "urgent": "high",
}
ENV_PREFIX = "MAILDESK_"
#: Variables with our prefix that are not config keys; any other MAILDESK_*
#: variable must name a setting (a typo is an error, not silently ignored).
NON_KEY_VARIABLES = {"MAILDESK_CONFIG", "MAILDESK_FUZZ_EXAMPLES"}
#: Prefixes of variables that are not config keys: the test suite's
#: (where its services are) and the benchmarks'.
NON_KEY_PREFIXES = ("MAILDESK_TEST_", "MAILDESK_BENCH_")
DEFAULT_FREE_MAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "outlook.com", "outlook.de", "hotmail.com",
    "hotmail.de", "live.com", "live.de", "msn.com", "yahoo.com", "yahoo.de",
    "icloud.com", "me.com", "mac.com", "aol.com", "aol.de", "gmx.de", "gmx.net",
    "gmx.at", "gmx.ch", "gmx.com", "web.de", "t-online.de", "freenet.de",
    "posteo.de", "mailbox.org", "arcor.de", "proton.me", "protonmail.com",
    "1und1.de", "online.de", "vodafone.de", "kabelmail.de", "email.de",
)


class ConfigError(PermanentError):
    """A config problem, phrased for the person who has to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = ""  # "" = SQLite file maildesk.sqlite3 in the data dir
    echo: bool = False


class MailSettings(_Section):
    addresses: tuple[str, ...] = ("support@example.com",)
    subject_tag: str = "[#{number}]"
    message_id_domain: str = ""  # "" = the domain of the first support address
    first_ticket_number: int = Field(default=10001, ge=1)
    default_language: Literal["de", "en"] = "de"
    free_mail_domains: tuple[str, ...] = DEFAULT_FREE_MAIL_DOMAINS

    @field_validator("addresses", "free_mail_domains")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError("at least one support address is needed")
        for value in values:
            local, at, domain = value.partition("@")
            if not (local and at and domain) or "+" in local:
                raise ValueError(f"{value!r} is not a plain mail address")
        return values

    @field_validator("subject_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain {number}, e.g. '[#{number}]'")
        return value


class SmtpSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=1, le=65535)
    hostname: str = ""  # "" = this machine's FQDN, for the greeting
    max_connections: int = Field(default=100, ge=1)
    timeout_seconds: int = Field(default=300, ge=5)
    tls_cert: str = ""  # STARTTLS is offered when cert and key are both set
    tls_key: str = Field(default="", validate_default=True)

    @field_validator("tls_key")
    @classmethod
    def _tls_pair(cls, value: str, info: ValidationInfo) -> str:
        """One of the two alone would silently offer no STARTTLS."""
        cert = info.data.get("tls_cert", "")
        if bool(cert) != bool(value):
            raise ValueError("smtp.tls_cert and smtp.tls_key go together: "
                             + ("tls_cert is set but tls_key is not" if cert else
                                "tls_key is set but tls_cert is not")
                             + " (set both for STARTTLS, or neither)")
        return value


class LmtpSettings(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=2424, ge=1, le=65535)
    socket: str = ""  # a unix socket path; when set, host and port are not used
    # Who may connect to the socket: Postfix's lmtp client runs as `postfix`,
    # not as maildesk, and the socket would otherwise get maildesk's umask.
    socket_mode: str = Field(default="0660", pattern=r"^0?[0-7]{3}$")  # octal, e.g. "0660"
    socket_group: str = ""  # "" = maildesk's own group; e.g. "postfix"
    max_connections: int = Field(default=100, ge=1)
    timeout_seconds: int = Field(default=300, ge=5)


class ServeSettings(_Section):
    grace_seconds: float = Field(default=30, gt=0)
    drain_interval_seconds: float = Field(default=10, gt=0)
    processors: int = Field(default=1, ge=0, le=64)
    # a temporary fault (deadlock, lost connection, full disk) retries the
    # mail after retry_seconds, doubling up to retry_max_seconds
    retry_seconds: float = Field(default=2, gt=0)
    retry_max_seconds: float = Field(default=300, gt=0, validate_default=True)

    @field_validator("retry_max_seconds")
    @classmethod
    def _retry_order(cls, value: float, info: ValidationInfo) -> float:
        first = info.data.get("retry_seconds")
        if first is not None and value < first:
            raise ValueError(f"below serve.retry_seconds ({first:g}): the longest wait "
                             f"cannot be shorter than the first")
        return value


#: Hosts to which a token_url may be plain http:// (a local test endpoint):
#: anywhere else a client secret must not cross the network unencrypted.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OAuth2Settings(_Section):
    """[imap.oauth2]: how an account with auth = "xoauth2" / "oauthbearer"
    gets its access token (accept/oauth2.py). Each secret comes from the
    config itself, a file (`*_file`) or an environment variable named here
    (`*_env`), at most one of them."""

    token_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    client_secret_file: str = ""
    client_secret_env: str = ""
    #: Microsoft 365 app-only: "https://outlook.office365.com/.default";
    #: Google: "https://mail.google.com/" (space-separated when several).
    scope: str = ""
    #: "" = refresh_token when a refresh token is configured, else
    #: client_credentials
    grant: Literal["", "client_credentials", "refresh_token"] = ""
    refresh_token: str = ""
    refresh_token_file: str = ""
    refresh_token_env: str = ""
    timeout_seconds: float = Field(default=30, gt=0, le=300)

    @field_validator("client_secret_env", "refresh_token_env")
    @classmethod
    def _env_name(cls, value: str, info: ValidationInfo) -> str:
        """A MAILDESK_* variable would be taken for a setting (and refused
        as an unknown one) by load_settings before this key is ever read."""
        value = value.strip()
        if value.upper().startswith(ENV_PREFIX):
            raise ValueError(
                f"{info.field_name} names a {ENV_PREFIX}* variable, but those are maildesk "
                f"settings (an unknown one is an error): use a name without that prefix, "
                f"e.g. {value[len(ENV_PREFIX):] or 'M365_SECRET'}")
        if value and not _ENV_NAME.match(value):
            raise ValueError(f"{info.field_name} is the name of an environment variable "
                             f"(letters, digits, _), e.g. M365_SECRET")
        return value

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        match = re.match(r"^(https?)://(\[[^\]]+\]|[^/:\s]+)", value)
        if value and match is None:
            raise ValueError("must be an absolute https:// URL, e.g. "
                             "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token")
        if match and match.group(1) == "http" and match.group(2).strip("[]") not in LOOPBACK_HOSTS:
            raise ValueError("must be https:// (the client secret or refresh token is sent "
                             "there); plain http:// only to 127.0.0.1, ::1 or localhost")
        return value

    @model_validator(mode="after")
    def _combination(self) -> OAuth2Settings:
        """One grant, its secrets set once each: a wrong mix is refused here
        rather than found out at the first token request."""
        if not self.token_url:
            raise ValueError("token_url is not set (Microsoft 365: https://login."
                             "microsoftonline.com/<tenant>/oauth2/v2.0/token, Google: "
                             "https://oauth2.googleapis.com/token)")
        if not self.client_id.strip():
            raise ValueError("client_id is not set (the app registration's client ID)")
        secrets_set = [k for k in ("client_secret", "client_secret_file", "client_secret_env")
                       if getattr(self, k)]
        refresh_set = [k for k in ("refresh_token", "refresh_token_file", "refresh_token_env")
                       if getattr(self, k)]
        for keys in (secrets_set, refresh_set):
            if len(keys) > 1:
                raise ValueError(f"{' and '.join(keys)} are both set: give one of them")
        if self.grant == "client_credentials" and refresh_set:
            raise ValueError(f"grant = \"client_credentials\" but {refresh_set[0]} is set too: "
                             f"choose one grant (client credentials for Microsoft 365 app-only "
                             f"access, refresh_token for delegated access)")
        if self.grant == "refresh_token" and not refresh_set:
            raise ValueError("grant = \"refresh_token\" needs refresh_token, "
                             "refresh_token_file or refresh_token_env")
        if self.grant_type == "client_credentials" and not secrets_set:
            raise ValueError("the client_credentials grant needs the client secret: set "
                             "client_secret_file, client_secret_env or client_secret")
        return self

    @property
    def grant_type(self) -> str:
        """The grant in use: the configured one, else what the keys imply."""
        if self.grant:
            return self.grant
        refresh = self.refresh_token or self.refresh_token_file or self.refresh_token_env
        return "refresh_token" if refresh else "client_credentials"


class ImapAccountSettings(_Section):
    name: str
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    user: str
    password: str = ""
    password_file: str = ""
    folder: str = "INBOX"
    processed_folder: str = ""  # move processed mail there; "" = flag it in place
    processed_flag: str = "$MaildeskProcessed"
    poll_seconds: float = Field(default=60, gt=0)
    idle: bool = True
    #: How long a crashed instance keeps the account from the others: the
    #: holder renews every third of it; a standby takes over within ~1.33 x.
    lease_seconds: float = Field(default=30, ge=3, le=600)
    #: The longest wait between reconnect attempts (the backoff doubles from
    #: 1 s up to this); a mailbox that is back is polled within it.
    backoff_max_seconds: float = Field(default=60, ge=1, le=3600)
    #: "password" (LOGIN), or SASL XOAUTH2 / OAUTHBEARER with a token got
    #: as [imap.oauth2] says (Microsoft 365 and Google take no passwords)
    auth: Literal["password", "xoauth2", "oauthbearer"] = "password"
    oauth2: OAuth2Settings | None = None

    @model_validator(mode="after")
    def _auth(self) -> ImapAccountSettings:
        if self.auth == "password" and self.oauth2 is not None:
            raise ValueError(f"[imap.oauth2] is set but auth = \"password\" (account "
                             f"{self.name!r}): set auth = \"xoauth2\" (or \"oauthbearer\") "
                             f"to use it, or remove the table")
        if self.auth != "password" and self.oauth2 is None:
            raise ValueError(f"auth = \"{self.auth}\" needs an [imap.oauth2] table with "
                             f"token_url, client_id and a secret (account {self.name!r})")
        if self.auth != "password" and (self.password or self.password_file):
            raise ValueError(f"auth = \"{self.auth}\" logs in with a token: password and "
                             f"password_file are not used, remove them (account {self.name!r})")
        return self

    def read_password(self) -> str:
        """The password, from password_file when set (kept out of the config)."""
        if self.password_file:
            return Path(self.password_file).read_text(encoding="utf-8").strip()
        return self.password


class BrokerSettings(_Section):
    url: str = ""  # "" = embedded: serve runs the actors itself


class WorkerSettings(_Section):
    threads: int = Field(default=4, ge=1, le=64)
    processes: int = Field(default=1, ge=1, le=32)
    sweep_seconds: float = Field(default=5, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=30, gt=0)
    stale_sending_seconds: float = Field(default=300, gt=0)


class RelaySettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    user: str = ""
    password_file: str = ""
    timeout_seconds: float = Field(default=30, gt=0)

    def read_password(self) -> str:
        if not self.password_file:
            return ""
        return Path(self.password_file).read_text(encoding="utf-8").strip()


#: The sign-off under every customer mail, per language (notify.signature_name).
SIGNATURE_NAMES: Mapping[str, str] = {"de": "Ihr Support-Team", "en": "Your support team"}


class SignatureNames(_Section):
    """notify.signature_name: the team's name under a mail, per language."""

    de: str = SIGNATURE_NAMES["de"]
    en: str = SIGNATURE_NAMES["en"]


class NotifySettings(_Section):
    from_name: str = "Support"
    #: per language; a plain string (the old form) is used for every language,
    #: except the old German default, which means the defaults of both
    signature_name: SignatureNames = Field(default_factory=SignatureNames)
    brand: str = "Support"
    templates_dir: str = ""  # "" = only the built-in templates
    auto_limit_count: int = Field(default=10, ge=1)
    auto_limit_hours: float = Field(default=3, gt=0)
    agent_files_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    #: a bounced address is mailed again this many days after its bounce
    bounce_expiry_days: int = Field(default=60, ge=1)

    @field_validator("signature_name", mode="before")
    @classmethod
    def _signature_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value == SIGNATURE_NAMES["de"]:
                return dict(SIGNATURE_NAMES)
            return dict.fromkeys(SIGNATURE_NAMES, value)
        return value

    def signature(self, language: str) -> str:
        """The sign-off of a mail in `language` (German when unknown)."""
        return str(getattr(self.signature_name, language, self.signature_name.de))


class CalendarSettings(_Section):
    timezone: str = "Europe/Berlin"
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    country: str = "DE"
    subdivision: str = ""  # e.g. "BY" for Bavaria; "" = national holidays only
    closed_days: tuple[str, ...] = ()  # extra closed days, ISO dates
    business_hours: tuple[str, str] = ("08:00", "17:00")

    @field_validator("workdays")
    @classmethod
    def _workdays(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(v < 0 or v > 6 for v in values):
            raise ValueError("workdays are numbers 0 (Monday) to 6 (Sunday), at least one")
        return tuple(sorted(set(values)))


class RulesSettings(_Section):
    reminder_business_days: int = Field(default=5, ge=1)
    second_reminder_business_days: int = Field(default=5, ge=1)
    solved_close_days: int = Field(default=14, ge=1)
    sweep_seconds: float = Field(default=60, gt=0)
    release_status: Literal["solved", "open"] = "solved"


class SlaThreshold(_Section):
    first_response_hours: float = Field(gt=0)
    resolution_hours: float = Field(gt=0)


class SlaSettings(_Section):
    """Business hours per request type; yellow from `yellow_at` of a limit."""

    yellow_at: float = Field(default=0.75, gt=0, lt=1)
    user_help: SlaThreshold = SlaThreshold(first_response_hours=16, resolution_hours=80)
    incident: SlaThreshold = SlaThreshold(first_response_hours=8, resolution_hours=40)
    product_request: SlaThreshold = SlaThreshold(first_response_hours=16, resolution_hours=160)
    urgent: SlaThreshold = SlaThreshold(first_response_hours=2, resolution_hours=8)
    #: Who is told when a ticket's light turns yellow and again when it
    #: turns red (schedule/escalation.py): "assignee" (else the group),
    #: "group" (its members, else its address, else the assignee), "both",
    #: or "none" to tell nobody.
    escalate_to: Literal["assignee", "group", "both", "none"] = "assignee"
    #: An address also told when the light turns red (a team lead); "" = nobody more.
    escalate_red_to: str = ""
    #: Told when escalate_to finds nobody (no assignee, no group); "" = every agent.
    escalate_fallback: str = ""

    @field_validator("escalate_red_to", "escalate_fallback")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip().lower()
        if value and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"{value!r} is not a mail address")
        return value


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)
    #: how customers reach the pages (links in mails); "" = http://<host>:<port>
    #: of this listener, so that overriding web.port moves the links along
    base_url: str = ""
    csat_link_days: int = Field(default=60, ge=1)  # the survey link in the solution mail
    csat_change_days: float = Field(default=7, ge=0)  # a rating may be changed this long
    solve_link_days: int = Field(default=30, ge=1)  # "mark as solved" in agent replies
    file_link_days: int = Field(default=14, ge=1)  # download links in agent notices

    @model_validator(mode="before")
    @classmethod
    def _default_base_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or str(data.get("base_url") or "").strip():
            return data
        try:
            port = int(data.get("port", cls.model_fields["port"].default))
        except (TypeError, ValueError):
            return data  # the port's own error is the one to show
        return {**data, "base_url": listener_url(
            str(data.get("host", cls.model_fields["host"].default)), port)}

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.match(r"^https?://[^/\s]+", value):  # "": web.port is wrong
            raise ValueError("must be an absolute http:// or https:// URL, "
                             "e.g. https://support.example.com")
        return value


#: Hosts that mean "every address": no customer can reach a link to them.
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "*")


def listener_url(host: str, port: int) -> str:
    """web.base_url's default: the web listener itself (a wildcard host is
    replaced by this machine's name, which `maildesk check` warns about)."""
    host = host.strip()
    if host in WILDCARD_HOSTS:
        host = os.uname().nodename or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class PortalSettings(_Section):
    """The customers' portal under /portal/ (web/portal/): passwordless login."""

    enabled: bool = True
    login_minutes: int = Field(default=15, ge=1, le=24 * 60)  # a mailed login link is valid
    session_days: float = Field(default=14, gt=0)  # a logged-in browser stays logged in
    login_requests_per_address_per_hour: int = Field(default=5, ge=1)
    login_requests_per_client_per_hour: int = Field(default=20, ge=1)
    # Help articles (Markdown files; folders are categories): "" = <data_dir>/articles
    articles_dir: str = ""
    articles_public: bool = True  # readable without logging in
    # Client addresses of reverse proxies whose X-Forwarded-For names the
    # real client (for the per-client login limit); empty: none is trusted
    trusted_proxies: tuple[str, ...] = ()


class RegistrationSettings(_Section):
    confirm: bool = True  # new customers get a confirmation link by mail
    link_days: int = Field(default=14, ge=1)


class SecuritySettings(_Section):
    secret: str = ""  # "" = a random secret kept in <data_dir>/secret
    # PostgreSQL means several instances may share the database: a secret
    # generated into one instance's data dir is refused unless this is true
    allow_local_secret: bool = False
    # authserv-ids of the MTAs in front whose Authentication-Results count
    trusted_authserv_ids: tuple[str, ...] = ()

    @field_validator("trusted_authserv_ids")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values if v.strip())


class HeldSettings(_Section):
    keep_days: int = Field(default=30, ge=1)  # unrecovered held mail is purged after this


class LoopSettings(_Section):
    rate_limit_count: int = Field(default=20, ge=1)
    rate_limit_minutes: int = Field(default=10, ge=1)
    blocked_senders: tuple[str, ...] = ()

    @field_validator("blocked_senders")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in values if v.strip())


class LimitSettings(_Section):
    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_attachment_bytes: int = Field(default=20 * 1024 * 1024, ge=0)


class SecondLevelSettings(_Section):
    # 2nd-level support (seed 003): the group (a [[groups]] name) a ticket
    # handed to level 2 is assigned to; its members are told. "": the group
    # stays, and the usual agents are told.
    group: str = ""


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["plain", "json"] = "plain"


class RouteSettings(_Section):
    address: str
    request_type: Literal["user_help", "incident", "product_request", "urgent"] = "user_help"
    priority: Literal["low", "normal", "high"] | None = None
    category: str | None = None
    subcategory: str | None = None
    group: str | None = None

    @field_validator("address")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class AgentSettings(_Section):
    email: str
    name: str = ""
    language: Literal["de", "en"] = "de"

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class GroupSettings(_Section):
    name: str
    email: str | None = None
    members: tuple[str, ...] = ()


class CategorySettings(_Section):
    """A main category (seed 003): its sub categories, the agent group that
    works its tickets, the address told of them when no group is assigned,
    and whether customers may choose it in forms."""

    name: str = Field(min_length=1, max_length=100)
    subcategories: tuple[str, ...] = ()
    group: str | None = None  # a [[groups]] name
    notify: str | None = None  # an address told of its tickets
    public: bool = False  # offered to customers in forms (the portal)
    asks_version: bool = False  # the portal's form asks for the product version in use

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value or "/" in value:
            raise ValueError("a category name is not empty and has no '/'")
        return value

    @field_validator("subcategories")
    @classmethod
    def _subs(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip() for v in values)
        if any(not v or "/" in v or len(v) > 100 for v in cleaned):
            raise ValueError("a sub category is 1 to 100 characters without '/'")
        return cleaned

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: str | None) -> str | None:
        value = (value or "").strip().lower()
        if value and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"{value!r} is not a mail address")
        return value or None


class Settings(_Section):
    data_dir: Path = Path("./var")
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    lmtp: LmtpSettings = LmtpSettings()
    serve: ServeSettings = ServeSettings()
    mail: MailSettings = MailSettings()
    limits: LimitSettings = LimitSettings()
    loops: LoopSettings = LoopSettings()
    broker: BrokerSettings = BrokerSettings()
    worker: WorkerSettings = WorkerSettings()
    relay: RelaySettings = RelaySettings()
    notify: NotifySettings = NotifySettings()
    calendar: CalendarSettings = CalendarSettings()
    rules: RulesSettings = RulesSettings()
    sla: SlaSettings = SlaSettings()
    web: WebSettings = WebSettings()
    portal: PortalSettings = PortalSettings()
    registration: RegistrationSettings = RegistrationSettings()
    held: HeldSettings = HeldSettings()
    security: SecuritySettings = SecuritySettings()
    log: LogSettings = LogSettings()
    second_level: SecondLevelSettings = SecondLevelSettings()
    routes: tuple[RouteSettings, ...] = ()
    imap: tuple[ImapAccountSettings, ...] = ()
    agents: tuple[AgentSettings, ...] = ()
    groups: tuple[GroupSettings, ...] = ()
    #: Main and sub categories (seed 003); none = categories are free text.
    categories: tuple[CategorySettings, ...] = ()
    #: hyperspace's "Ticket der Gruppe der Hauptkategorie zuweisen": a
    #: category given to a ticket assigns its main category's group.
    categories_assign_group: bool = True

    @field_validator("categories")
    @classmethod
    def _categories(cls, values: tuple[CategorySettings, ...],
                    info: ValidationInfo) -> tuple[CategorySettings, ...]:
        """Groups named must exist; names are unique; routes name listed ones."""
        seen: set[str] = set()
        groups = {g.name for g in info.data.get("groups", ())}
        for index, category in enumerate(values):
            if category.name.lower() in seen:
                raise ValueError(f"categories[{index}].name: {category.name!r} is listed twice")
            seen.add(category.name.lower())
            if category.group is not None and category.group not in groups:
                raise ValueError(
                    f"categories[{index}].group: no group {category.group!r} "
                    f"(groups in the config: {', '.join(sorted(groups)) or 'none'})")
        if values:
            allowed = category_labels(values)
            for index, route in enumerate(info.data.get("routes", ())):
                if route.category is None:
                    continue
                wanted = (f"{route.category}/{route.subcategory}" if route.subcategory
                          else route.category)
                if wanted.lower() not in {a.lower() for a in allowed}:
                    raise ValueError(f"routes[{index}].category: {wanted!r} is not a "
                                     f"configured category (allowed: {', '.join(allowed)})")
        return values

    @property
    def category_labels(self) -> tuple[str, ...]:
        """The categories an agent may set ("Main" and "Main/Sub"); empty
        when none are configured (then any category is taken as given)."""
        return category_labels(self.categories)

    def category(self, name: str | None) -> CategorySettings | None:
        """The configured main category `name` (any case), if any."""
        if not name:
            return None
        return next((c for c in self.categories if c.name.lower() == name.lower()), None)

    @property
    def database_url(self) -> str:
        """The configured URL, or the SQLite file inside the data dir."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'maildesk.sqlite3').as_posix()}"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"

    @property
    def articles_dir(self) -> Path:
        """The help articles' directory ([portal] articles_dir; relative to the data dir)."""
        configured = self.portal.articles_dir.strip()
        if not configured:
            return self.data_dir / "articles"
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def message_id_domain(self) -> str:
        return self.mail.message_id_domain or self.mail.addresses[0].partition("@")[2]

    def route_for(self, address: str) -> RouteSettings | None:
        for route in self.routes:
            if route.address == address.lower():
                return route
        return None


def category_labels(categories: tuple[CategorySettings, ...]) -> tuple[str, ...]:
    """Each main category, then each of its "Main/Sub" labels."""
    labels: list[str] = []
    for category in categories:
        labels.append(category.name)
        labels += [f"{category.name}/{sub}" for sub in category.subcategories]
    return tuple(labels)


def default_config_path() -> Path | None:
    """`MAILDESK_CONFIG`, else ./maildesk.toml when it exists, else none."""
    env = os.environ.get("MAILDESK_CONFIG")
    if env:
        return Path(env)
    local = Path("maildesk.toml")
    return local if local.is_file() else None


def load_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the file (if any), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    origin = "built-in defaults"
    if path is not None:
        origin = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    sources: dict[tuple[str, ...], str] = {}
    unknown: list[str] = []
    for name, raw in environ.items():
        if not is_setting_variable(name):
            continue
        key = _env_key(name)
        if key is None:
            unknown.append(unknown_variable(name))
            continue
        target = data
        for part in key[:-1]:
            existing = target.get(part)
            if not isinstance(existing, dict):
                existing = target[part] = {}
            target = existing
        target[key[-1]] = _env_value(raw)
        sources[key] = f"environment variable {name}"
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, sources, unknown)) from None
    if unknown:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(unknown))
    return settings


def is_setting_variable(name: str) -> bool:
    """A MAILDESK_* variable that must name a setting (all but the few
    that are not config keys)."""
    return (name.startswith(ENV_PREFIX) and name not in NON_KEY_VARIABLES
            and not name.startswith(NON_KEY_PREFIXES))


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _env_key(name: str) -> tuple[str, ...] | None:
    """`MAILDESK_RELAY__PORT` -> ("relay", "port") when it is a known key.

    A nested table inside a section (notify.signature_name, sla.incident)
    is a key too: its value is a TOML inline table (or what its validator
    takes); only a whole top-level section cannot come from one variable."""
    parts = tuple(p.lower() for p in name[len(ENV_PREFIX):].split("__"))
    model: type[BaseModel] = Settings
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        last = index == len(parts) - 1
        if _is_section(field.annotation) and not last:
            model = field.annotation
        elif (_is_section(field.annotation) and index == 0) or not last:
            return None
    return parts


def setting_variables() -> tuple[str, ...]:
    """Every environment variable that names a setting, e.g. MAILDESK_SMTP__PORT."""
    names: list[str] = []

    def walk(model: type[BaseModel], prefix: str, top: bool) -> None:
        for field_name, field in model.model_fields.items():
            name = prefix + field_name.upper()
            if _is_section(field.annotation):
                if not top:
                    names.append(name)
                walk(field.annotation, name + "__", False)
            else:
                names.append(name)

    walk(Settings, ENV_PREFIX, True)
    return tuple(names)


def unknown_variable(name: str) -> str:
    """The error line for a MAILDESK_* variable that names no setting, with
    the closest valid name: a typo there must not pass unnoticed, as it
    would in the file."""
    valid = setting_variables()
    upper = name.upper()
    rest = upper[len(ENV_PREFIX):]  # the shared prefix would make everything look close
    close = difflib.get_close_matches(rest, [v[len(ENV_PREFIX):] for v in valid], n=1,
                                      cutoff=0.6)
    section = rest.lower()
    if section in Settings.model_fields and _is_section(Settings.model_fields[section].annotation):
        example = next(v for v in valid if v.startswith(upper + "__"))
        hint = f"[{section}] is a section: set its keys one by one, e.g. {example}"
    elif close:
        hint = f"did you mean {ENV_PREFIX}{close[0]}?"
    else:
        hint = "see maildesk.toml for the keys"
    return (f"environment variable {name}: names no setting; {hint} (variables are "
            f"MAILDESK_<KEY> or MAILDESK_<SECTION>__<KEY>, two underscores between)")


def _env_value(raw: str) -> Any:
    """Environment values are TOML literals when they parse as one (numbers,
    booleans, arrays), plain strings otherwise — so `2626`, `true` and
    `["a@x", "b@x"]` work as expected and a password stays a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


#: Keys whose value is a secret: an error about one never quotes the value.
_SECRET_KEY = re.compile(r"(password|secret|token)$")


def _describe(exc: ValidationError, origin: str, sources: dict[tuple[str, ...], str],
              unknown: list[str] | None = None) -> str:
    lines = list(unknown or ())
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"])
        key = ".".join(loc)
        where = origin
        for length in range(len(loc), 0, -1):
            if loc[:length] in sources:
                where = sources[loc[:length]]
                break
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (see maildesk.toml for the documented keys)"
        elif ("input" in error and not isinstance(error["input"], dict | list)
              and not _SECRET_KEY.search(loc[-1] if loc else "")):
            message = f"{message} (got {error['input']!r})"  # a secret's value is never shown
        lines.append(f"{where}: key '{key}': {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
