"""Publishing a reply: through the platform's API where credentials are configured, otherwise
"copy and open the post" and the agent confirms it went out.

Platforms with an API path: Mastodon (POST /api/v1/statuses), Bluesky (createSession, then
com.atproto.repo.createRecord with a reply reference and link facets), Reddit (POST
/api/comment), X (POST /2/tweets with a reply). Base URLs come from `settings.triage.publish`
(defaults below) so that tests and self-hosted instances point elsewhere. Tokens come from the
environment only, never from tocsin.toml, and never appear in errors or logs:

    mastodon  TOCSIN_MASTODON_TOKEN (or the variable named by publish.mastodon.token_env)
    bluesky   TOCSIN_BLUESKY_HANDLE + TOCSIN_BLUESKY_APP_PASSWORD
    reddit    TOCSIN_REDDIT_ACCESS_TOKEN (an OAuth token of the brand's account, scope submit)
    x         TOCSIN_X_USER_TOKEN (an OAuth 2.0 user-context token with tweet.write)

Order of events for an API send (`publish_reply`): the send-time checks and the "sent" record
are committed first (`triage.replies.reserve_send`), so a second sender is refused even while the
first request is in flight; then the API call; then the platform's id and URL are stored. If
the platform refuses, the record is undone (`undo_send`) and `PublishError` says why.

Public functions: `publisher_for(platform, settings, secrets) -> Publisher | None`,
`publish_reply(*, reply_id, member_id, settings, secrets=None, callback_note="")
-> PublishOutcome`, `manual_send(session, *, reply_id, member_id, settings) -> ManualSend`,
`confirm_manual_send(session, *, reply_id, member_id, settings, external_url=None, ...)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from sqlmodel import Session

from storage.db import session_scope
from storage.models import Mention, Reply
from tocsin.config import Secrets, Settings, get_secrets
from triage import cases, replies
from triage.errors import PublishError, TriageError

TIMEOUT_SECONDS = 15.0
USER_AGENT = "tocsin/0.1 (reputation triage; replies by the brand's team)"
DEFAULT_BASE_URLS = {
    "mastodon": "https://mastodon.social",
    "bluesky": "https://bsky.social",
    "reddit": "https://oauth.reddit.com",
    "x": "https://api.x.com",
}
DEFAULT_TOKEN_ENV = {
    "mastodon": "TOCSIN_MASTODON_TOKEN",
    "reddit": "TOCSIN_REDDIT_ACCESS_TOKEN",
    "x": "TOCSIN_X_USER_TOKEN",
}
_LINK = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


@dataclass(slots=True)
class Target:
    """The post being answered, as the platform knows it."""

    platform: str
    external_id: str
    url: str | None
    raw: dict[str, Any]
    lang: str | None


@dataclass(slots=True)
class Published:
    external_id: str
    url: str | None


class Publisher(Protocol):
    platform: str

    def post_reply(self, target: Target, text: str, *, idempotency_key: str) -> Published: ...


@dataclass(slots=True)
class PublishOutcome:
    mode: str  # "api" | "manual"
    reply_id: int
    text: str
    post_url: str | None  # the post to open (manual mode)
    open_url: str | None  # a link that opens the reply box where the platform has one
    external_id: str | None = None
    external_url: str | None = None

    @property
    def message(self) -> str:
        if self.mode == "api":
            return f"reply posted: {self.external_url or self.external_id}"
        return "copy the reply, open the post, answer it there, then confirm it was sent"


@dataclass(slots=True)
class ManualSend:
    reply_id: int
    text: str
    post_url: str | None
    open_url: str | None


# ----------------------------------------------------------------------------- HTTP helpers


def _base_url(platform: str, settings: Settings) -> str:
    target = settings.triage.publish.get(platform)
    base = target.base_url if target and target.base_url else DEFAULT_BASE_URLS[platform]
    return base.rstrip("/")


def _token(platform: str, settings: Settings, secrets: Secrets) -> str | None:
    target = settings.triage.publish.get(platform)
    name = target.token_env if target and target.token_env else DEFAULT_TOKEN_ENV.get(platform)
    if name is None:
        return None
    if platform == "mastodon" and name == "TOCSIN_MASTODON_TOKEN" and secrets.mastodon_token:
        return secrets.mastodon_token.get_secret_value()
    return secrets.env(name) or None


def _request(
    client: httpx.Client, method: str, url: str, *, platform: str, **kwargs: Any
) -> dict[str, Any]:
    """One API call; any failure becomes a PublishError without credentials in it."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        host = urlsplit(url).netloc
        raise PublishError(f"could not reach {platform} at {host}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        detail = _error_detail(response)
        why = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
        raise PublishError(f"{platform} refused the reply ({why})")
    try:
        body = response.json()
    except ValueError:
        raise PublishError(f"{platform} answered with something that is not JSON") from None
    if not isinstance(body, dict):
        raise PublishError(f"{platform} answered with an unexpected shape")
    return body


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        for key in ("error_description", "error", "message", "detail", "title"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _client(headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(
        timeout=TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT, **headers}, trust_env=False
    )


# ----------------------------------------------------------------------------- platforms


@dataclass(slots=True)
class MastodonPublisher:
    base_url: str
    token: str
    platform: str = "mastodon"

    def post_reply(self, target: Target, text: str, *, idempotency_key: str) -> Published:
        with _client({"Authorization": f"Bearer {self.token}"}) as client:
            status_id = self._local_id(client, target)
            body = _request(
                client,
                "POST",
                f"{self.base_url}/api/v1/statuses",
                platform=self.platform,
                headers={"Idempotency-Key": idempotency_key},
                json={
                    "status": text,
                    "in_reply_to_id": status_id,
                    "visibility": "public",
                    **({"language": target.lang} if target.lang else {}),
                },
            )
        if not body.get("id"):
            raise PublishError("mastodon did not return the new post's id")
        return Published(str(body["id"]), body.get("url") or body.get("uri"))

    def _local_id(self, client: httpx.Client, target: Target) -> str:
        """Status ids are per instance: a post seen on another instance is looked up first."""
        if not target.url or urlsplit(target.url).netloc == urlsplit(self.base_url).netloc:
            return target.external_id
        found = _request(
            client,
            "GET",
            f"{self.base_url}/api/v2/search",
            platform=self.platform,
            params={"q": target.url, "type": "statuses", "resolve": "true", "limit": 1},
        )
        statuses = found.get("statuses") or []
        if not statuses or not statuses[0].get("id"):
            raise PublishError("mastodon could not find the post on the brand's instance")
        return str(statuses[0]["id"])


def _utf8_offsets(text: str, start: int, end: int) -> tuple[int, int]:
    return len(text[:start].encode()), len(text[:end].encode())


def bluesky_facets(text: str) -> list[dict[str, Any]]:
    """Link facets (byte offsets in UTF-8) so that links in the reply are clickable."""
    facets = []
    for match in _LINK.finditer(text):
        start, end = _utf8_offsets(text, match.start(), match.end())
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": end},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": match.group()}],
            }
        )
    return facets


@dataclass(slots=True)
class BlueskyPublisher:
    base_url: str
    handle: str
    app_password: str
    platform: str = "bluesky"

    def post_reply(self, target: Target, text: str, *, idempotency_key: str) -> Published:
        parent = _bluesky_ref(target)
        root = _bluesky_root(target) or parent
        with _client({}) as client:
            login = _request(
                client,
                "POST",
                f"{self.base_url}/xrpc/com.atproto.server.createSession",
                platform=self.platform,
                json={"identifier": self.handle, "password": self.app_password},
            )
            jwt, did = login.get("accessJwt"), login.get("did")
            if not jwt or not did:
                raise PublishError("bluesky sign-in returned no session")
            record: dict[str, Any] = {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "reply": {"root": root, "parent": parent},
            }
            if target.lang:
                record["langs"] = [target.lang]
            facets = bluesky_facets(text)
            if facets:
                record["facets"] = facets
            body = _request(
                client,
                "POST",
                f"{self.base_url}/xrpc/com.atproto.repo.createRecord",
                platform=self.platform,
                headers={"Authorization": f"Bearer {jwt}"},
                json={"repo": did, "collection": "app.bsky.feed.post", "record": record},
            )
        uri = body.get("uri")
        if not isinstance(uri, str):
            raise PublishError("bluesky did not return the new post's uri")
        rkey = uri.rsplit("/", 1)[-1]
        return Published(uri, f"https://bsky.app/profile/{did}/post/{rkey}")


def _bluesky_ref(target: Target) -> dict[str, str]:
    raw = target.raw
    uri = raw.get("uri") or (target.external_id if target.external_id.startswith("at://") else None)
    cid = raw.get("cid")
    if not uri or not cid:
        raise PublishError("the bluesky post has no uri/cid stored: answer it by hand")
    return {"uri": str(uri), "cid": str(cid)}


def _bluesky_root(target: Target) -> dict[str, str] | None:
    record = target.raw.get("record")
    reply = record.get("reply") if isinstance(record, dict) else None
    root = reply.get("root") if isinstance(reply, dict) else None
    if isinstance(root, dict) and root.get("uri") and root.get("cid"):
        return {"uri": str(root["uri"]), "cid": str(root["cid"])}
    return None


@dataclass(slots=True)
class RedditPublisher:
    base_url: str
    token: str
    platform: str = "reddit"

    def post_reply(self, target: Target, text: str, *, idempotency_key: str) -> Published:
        with _client({"Authorization": f"Bearer {self.token}"}) as client:
            body = _request(
                client,
                "POST",
                f"{self.base_url}/api/comment",
                platform=self.platform,
                data={"thing_id": reddit_fullname(target), "text": text, "api_type": "json"},
            )
        answer = _dict(body.get("json"))
        errors = answer.get("errors") or []
        if errors:
            first = errors[0]
            why = " ".join(str(part) for part in first[:2]) if isinstance(first, list) else first
            raise PublishError(f"reddit refused the reply ({why})")
        things = _dict(answer.get("data")).get("things") or []
        data = _dict(things[0].get("data")) if things and isinstance(things[0], dict) else {}
        if not data.get("name") and not data.get("id"):
            raise PublishError("reddit did not return the new comment")
        permalink = data.get("permalink")
        url = f"https://www.reddit.com{permalink}" if permalink else None
        return Published(str(data.get("name") or data.get("id")), url)


def reddit_fullname(target: Target) -> str:
    """t3_ (a post) or t1_ (a comment) + id, from what the collector stored."""
    name = target.raw.get("name")
    if isinstance(name, str) and name.startswith(("t1_", "t3_")):
        return name
    if target.external_id.startswith(("t1_", "t3_")):
        return target.external_id
    kind = "t3" if "title" in target.raw or "selftext" in target.raw else "t1"
    return f"{kind}_{target.external_id}"


@dataclass(slots=True)
class XPublisher:
    base_url: str
    token: str
    platform: str = "x"

    def post_reply(self, target: Target, text: str, *, idempotency_key: str) -> Published:
        with _client({"Authorization": f"Bearer {self.token}"}) as client:
            body = _request(
                client,
                "POST",
                f"{self.base_url}/2/tweets",
                platform=self.platform,
                json={"text": text, "reply": {"in_reply_to_tweet_id": target.external_id}},
            )
        data = _dict(body.get("data"))
        if not data.get("id"):
            raise PublishError("x did not return the new post's id")
        return Published(str(data["id"]), f"https://x.com/i/web/status/{data['id']}")


def publisher_for(
    platform: str | None, settings: Settings, secrets: Secrets | None = None
) -> Publisher | None:
    """The API publisher for a platform, or None when it has no credentials (manual path)."""
    name = (platform or "").lower()
    if name == "twitter":
        name = "x"
    if name not in DEFAULT_BASE_URLS:
        return None
    secrets = secrets or get_secrets()
    base = _base_url(name, settings)
    if name == "bluesky":
        password = secrets.bluesky_app_password
        if not secrets.bluesky_handle or password is None:
            return None
        return BlueskyPublisher(base, secrets.bluesky_handle, password.get_secret_value())
    token = _token(name, settings, secrets)
    if not token:
        return None
    if name == "mastodon":
        return MastodonPublisher(base, token)
    if name == "reddit":
        return RedditPublisher(base, token)
    return XPublisher(base, token)


# ----------------------------------------------------------------------------- the two paths


def _target(session: Session, reply: Reply) -> Target:
    case = cases.get_case(session, reply.case_id)
    mention = session.get(Mention, case.mention_id) if case.mention_id else None
    if mention is None:
        raise TriageError(f"case {case.id} has no post to answer")
    raw = mention.raw if isinstance(mention.raw, dict) else {}
    return Target(mention.platform, mention.external_id, mention.url, raw, mention.lang)


def open_url(target: Target, text: str) -> str | None:
    """A link that opens the platform's reply box, prefilled, where one exists."""
    if target.platform in ("x", "twitter"):
        return (
            f"https://x.com/intent/post?in_reply_to={quote(target.external_id)}&text={quote(text)}"
        )
    return target.url


def publish_reply(
    *,
    reply_id: int,
    member_id: int,
    settings: Settings,
    secrets: Secrets | None = None,
    callback_note: str = "",
) -> PublishOutcome:
    """Send a reply. With credentials: through the API (commits its own transactions, see the
    module docstring). Without: nothing is recorded, the outcome carries the text and the post's
    URL for the manual path, after the send-time checks passed."""
    with session_scope() as session:
        reply = session.get(Reply, reply_id)
        if reply is None:
            raise TriageError(f"reply {reply_id} does not exist")
        target = _target(session, reply)
        publisher = publisher_for(target.platform, settings, secrets)
        if publisher is None:
            manual = manual_send(session, reply_id=reply_id, member_id=member_id, settings=settings)
            return PublishOutcome("manual", reply_id, manual.text, manual.post_url, manual.open_url)
        ticket = replies.reserve_send(
            session,
            reply_id=reply_id,
            member_id=member_id,
            settings=settings,
            callback_note=callback_note,
        )
    try:
        published = publisher.post_reply(
            target, ticket.text, idempotency_key=f"tocsin-reply-{reply_id}"
        )
    except PublishError as exc:
        with session_scope() as session:
            replies.undo_send(session, ticket=ticket, error=str(exc))
        raise
    with session_scope() as session:
        replies.record_published(
            session,
            reply_id=reply_id,
            external_id=published.external_id,
            external_url=published.url,
            via=f"api:{publisher.platform}",
            member_id=member_id,
        )
    return PublishOutcome(
        "api", reply_id, ticket.text, target.url, None, published.external_id, published.url
    )


def manual_send(
    session: Session, *, reply_id: int, member_id: int, settings: Settings
) -> ManualSend:
    """What the agent copies and where they post it, once the send-time checks pass."""
    _, reply, _ = replies.check_can_send(
        session, reply_id=reply_id, member_id=member_id, settings=settings
    )
    target = _target(session, reply)
    return ManualSend(reply_id, reply.text, target.url, open_url(target, reply.text))


def confirm_manual_send(
    session: Session,
    *,
    reply_id: int,
    member_id: int,
    settings: Settings,
    external_url: str | None = None,
    callback_note: str = "",
) -> Reply:
    """The agent posted the reply by hand: record it as sent (the checks run again, so a
    colleague's answer in the meantime is still caught), with its link when they paste one."""
    if external_url and not external_url.startswith(("https://", "http://")):
        raise TriageError("paste the link of your reply (https://...), or leave it empty")
    ticket = replies.reserve_send(
        session,
        reply_id=reply_id,
        member_id=member_id,
        settings=settings,
        callback_note=callback_note,
    )
    return replies.record_published(
        session,
        reply_id=ticket.reply_id,
        external_id=None,
        external_url=external_url,
        via="manual",
        member_id=member_id,
    )
