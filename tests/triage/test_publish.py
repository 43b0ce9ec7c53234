"""Publishing against a local HTTP server on 127.0.0.1 that records each request, per platform;
the manual path when no credentials are configured."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from storage.db import session_scope
from storage.models import Case, Reply
from storage.queries import audit_events
from tests.triage.factories import add_author, add_member, open_case
from tocsin.config import Secrets, Settings
from triage import cases, publish, replies
from triage.errors import PublishError, ReplyCollision


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class FakePlatform:
    routes: dict[tuple[str, str], Callable[[Recorded], tuple[int, Any]]]
    requests: list[Recorded] = field(default_factory=list)
    base_url: str = ""


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform(routes={})

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            seen = Recorded(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            fake.requests.append(seen)
            route = fake.routes.get((self.command, parts.path))
            status, body = route(seen) if route else (404, {"error": "not found"})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _draft(
    settings: Settings,
    *,
    platform: str,
    external_id: str,
    raw: dict[str, Any] | None = None,
    url: str | None = None,
    text: str = "Sorry Zoé! DM us https://acme.example/help",
    action: str = "dm_invite",
) -> tuple[int, int, int]:
    with session_scope() as session:
        author = add_author(session, "zoe", platform=platform)
        agent = add_member(session, "Ana").id or 0
        case = open_case(
            session,
            settings,
            "lost parcel",
            platform=platform,
            external_id=external_id,
            raw=raw,
            author_id=author.id,
            url=url or f"https://example.org/{platform}/{external_id}",
        )
        cases.claim(session, case_id=case.id or 0, member_id=agent)
        reply = replies.create_draft(
            session, case_id=case.id or 0, member_id=agent, text=text, action=action
        )
        return case.id or 0, agent, reply.id or 0


def _settings(platform: str, base_url: str) -> Settings:
    return Settings(triage={"publish": {platform: {"base_url": base_url}}})  # type: ignore[arg-type]


def _stored(reply_id: int, case_id: int) -> tuple[Reply, Case, list[str]]:
    with session_scope() as session:
        reply, case = session.get(Reply, reply_id), session.get(Case, case_id)
        actions = [e.action for e in audit_events(session, entity_type="case", entity_id=case_id)]
    assert reply is not None and case is not None
    return reply, case, actions


def test_mastodon(db_url: str, platform: FakePlatform) -> None:
    settings = _settings("mastodon", platform.base_url)
    platform.routes[("POST", "/api/v1/statuses")] = lambda r: (
        200,
        {"id": "1109", "url": "https://brand.social/@acme/1109"},
    )
    case_id, agent, reply_id = _draft(
        settings, platform="mastodon", external_id="555", url=f"{platform.base_url}/@zoe/555"
    )
    outcome = publish.publish_reply(
        reply_id=reply_id,
        member_id=agent,
        settings=settings,
        secrets=Secrets(mastodon_token=SecretStr("tok-m")),
    )
    assert outcome.mode == "api" and outcome.external_url == "https://brand.social/@acme/1109"
    [sent] = platform.requests
    assert sent.headers["authorization"] == "Bearer tok-m"
    assert sent.headers["idempotency-key"] == f"tocsin-reply-{reply_id}"
    assert sent.json() == {
        "status": "Sorry Zoé! DM us https://acme.example/help",
        "in_reply_to_id": "555",
        "visibility": "public",
        "language": "en",
    }
    reply, case, actions = _stored(reply_id, case_id)
    assert (reply.status, reply.external_id) == ("sent", "1109")
    assert case.status == "handed_off" and case.first_response_at is not None
    assert actions[-2:] == ["reply.sent", "reply.published"]


def test_mastodon_post_from_another_instance_is_resolved_first(
    db_url: str, platform: FakePlatform
) -> None:
    settings = _settings("mastodon", platform.base_url)
    platform.routes[("GET", "/api/v2/search")] = lambda r: (200, {"statuses": [{"id": "77"}]})
    platform.routes[("POST", "/api/v1/statuses")] = lambda r: (200, {"id": "78", "url": None})
    _, agent, reply_id = _draft(
        settings, platform="mastodon", external_id="555", url="https://other.example/@zoe/555"
    )
    publish.publish_reply(
        reply_id=reply_id,
        member_id=agent,
        settings=settings,
        secrets=Secrets(mastodon_token=SecretStr("tok")),
    )
    search, post = platform.requests
    assert search.query["q"] == ["https://other.example/@zoe/555"]
    assert search.query["resolve"] == ["true"]
    assert post.json()["in_reply_to_id"] == "77"


def test_bluesky(db_url: str, platform: FakePlatform) -> None:
    settings = _settings("bluesky", platform.base_url)
    platform.routes[("POST", "/xrpc/com.atproto.server.createSession")] = lambda r: (
        200,
        {"accessJwt": "jwt-1", "did": "did:plc:acme"},
    )
    platform.routes[("POST", "/xrpc/com.atproto.repo.createRecord")] = lambda r: (
        200,
        {"uri": "at://did:plc:acme/app.bsky.feed.post/3kxyz", "cid": "bafy2"},
    )
    post_uri = "at://did:plc:zoe/app.bsky.feed.post/3kabc"
    raw = {
        "uri": post_uri,
        "cid": "bafy-parent",
        "record": {
            "reply": {"root": {"uri": "at://did:plc:x/app.bsky.feed.post/root", "cid": "bafy-root"}}
        },
    }
    case_id, agent, reply_id = _draft(
        settings,
        platform="bluesky",
        external_id=post_uri,
        raw=raw,
        text="Désolé ! https://acme.example/aide",
    )
    secrets = Secrets(bluesky_handle="acme.bsky.social", bluesky_app_password=SecretStr("app-pw"))
    outcome = publish.publish_reply(
        reply_id=reply_id, member_id=agent, settings=settings, secrets=secrets
    )
    assert outcome.external_url == "https://bsky.app/profile/did:plc:acme/post/3kxyz"
    login, create = platform.requests
    assert login.json() == {"identifier": "acme.bsky.social", "password": "app-pw"}
    assert create.headers["authorization"] == "Bearer jwt-1"
    body = create.json()
    record = body["record"]
    assert body["repo"] == "did:plc:acme" and body["collection"] == "app.bsky.feed.post"
    assert record["text"] == "Désolé ! https://acme.example/aide"
    assert record["reply"] == {
        "root": {"uri": "at://did:plc:x/app.bsky.feed.post/root", "cid": "bafy-root"},
        "parent": {"uri": post_uri, "cid": "bafy-parent"},
    }
    # "Désolé ! " is 11 bytes in UTF-8: the link facet starts there.
    assert record["facets"][0]["index"] == {
        "byteStart": 11,
        "byteEnd": 11 + len("https://acme.example/aide"),
    }
    reply, _, _ = _stored(reply_id, case_id)
    assert reply.external_id == "at://did:plc:acme/app.bsky.feed.post/3kxyz"


def test_reddit(db_url: str, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings("reddit", platform.base_url)
    monkeypatch.setenv("TOCSIN_REDDIT_ACCESS_TOKEN", "tok-r")
    platform.routes[("POST", "/api/comment")] = lambda r: (
        200,
        {
            "json": {
                "errors": [],
                "data": {
                    "things": [
                        {
                            "kind": "t1",
                            "data": {
                                "id": "k1",
                                "name": "t1_k1",
                                "permalink": "/r/acme/comments/abc/x/k1/",
                            },
                        }
                    ]
                },
            }
        },
    )
    case_id, agent, reply_id = _draft(
        settings, platform="reddit", external_id="abc", raw={"title": "Acme lost my parcel"}
    )
    outcome = publish.publish_reply(
        reply_id=reply_id, member_id=agent, settings=settings, secrets=Secrets()
    )
    [sent] = platform.requests
    assert sent.headers["authorization"] == "Bearer tok-r"
    assert sent.headers["user-agent"].startswith("tocsin/")
    assert sent.form() == {
        "thing_id": ["t3_abc"],
        "text": ["Sorry Zoé! DM us https://acme.example/help"],
        "api_type": ["json"],
    }
    assert outcome.external_url == "https://www.reddit.com/r/acme/comments/abc/x/k1/"
    reply, _, _ = _stored(reply_id, case_id)
    assert reply.external_id == "t1_k1"


def test_x(db_url: str, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings("x", platform.base_url)
    monkeypatch.setenv("TOCSIN_X_USER_TOKEN", "tok-x")
    platform.routes[("POST", "/2/tweets")] = lambda r: (201, {"data": {"id": "1850", "text": "."}})
    _, agent, reply_id = _draft(settings, platform="x", external_id="1849")
    outcome = publish.publish_reply(
        reply_id=reply_id, member_id=agent, settings=settings, secrets=Secrets()
    )
    [sent] = platform.requests
    assert sent.headers["authorization"] == "Bearer tok-x"
    assert sent.json() == {
        "text": "Sorry Zoé! DM us https://acme.example/help",
        "reply": {"in_reply_to_tweet_id": "1849"},
    }
    assert outcome.external_url == "https://x.com/i/web/status/1850"


def test_a_refusal_undoes_the_send_and_keeps_the_token_out_of_the_error(
    db_url: str, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings("x", platform.base_url)
    monkeypatch.setenv("TOCSIN_X_USER_TOKEN", "secret-token-123")
    platform.routes[("POST", "/2/tweets")] = lambda r: (403, {"detail": "You are not allowed"})
    case_id, agent, reply_id = _draft(settings, platform="x", external_id="1849")
    with pytest.raises(PublishError) as refused:
        publish.publish_reply(
            reply_id=reply_id, member_id=agent, settings=settings, secrets=Secrets()
        )
    assert str(refused.value) == "x refused the reply (HTTP 403: You are not allowed)"
    assert "secret-token-123" not in str(refused.value)
    reply, case, actions = _stored(reply_id, case_id)
    assert reply.status == "draft" and case.status == "assigned"
    assert case.first_response_at is None
    assert actions[-1] == "reply.send_failed"


def test_unreachable_platform(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = _settings("x", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TOCSIN_X_USER_TOKEN", "tok")
    case_id, agent, reply_id = _draft(settings, platform="x", external_id="1")
    with pytest.raises(PublishError, match=rf"could not reach x at 127\.0\.0\.1:{port}"):
        publish.publish_reply(
            reply_id=reply_id, member_id=agent, settings=settings, secrets=Secrets()
        )
    reply, _, _ = _stored(reply_id, case_id)
    assert reply.status == "draft"


def test_without_credentials_copy_and_open_then_confirm(db_url: str) -> None:
    settings = Settings()
    case_id, agent, reply_id = _draft(
        settings,
        platform="x",
        external_id="1849",
        text="Sorry! DM us",
        url="https://x.com/zoe/status/1849",
    )
    outcome = publish.publish_reply(
        reply_id=reply_id, member_id=agent, settings=settings, secrets=Secrets()
    )
    assert outcome.mode == "manual" and outcome.text == "Sorry! DM us"
    assert outcome.post_url == "https://x.com/zoe/status/1849"
    assert outcome.open_url == (
        "https://x.com/intent/post?in_reply_to=1849&text=Sorry%21%20DM%20us"
    )
    reply, case, _ = _stored(reply_id, case_id)
    assert reply.status == "draft" and case.first_response_at is None  # nothing recorded yet
    with session_scope() as session:
        confirmed = publish.confirm_manual_send(
            session,
            reply_id=reply_id,
            member_id=agent,
            settings=settings,
            external_url="https://x.com/acme/status/1850",
        )
    assert confirmed.status == "sent" and confirmed.external_url.endswith("/1850")  # type: ignore[union-attr]
    _, case, actions = _stored(reply_id, case_id)
    assert case.status == "handed_off" and actions[-1] == "reply.published"


def test_manual_confirmation_still_catches_a_colleague_who_answered(db_url: str) -> None:
    settings = Settings()
    case_id, agent, reply_id = _draft(settings, platform="youtube", external_id="yt1")
    with session_scope() as session:
        manual = publish.manual_send(session, reply_id=reply_id, member_id=agent, settings=settings)
        assert manual.open_url == manual.post_url
        lead = add_member(session, "Lea", role="lead").id or 0
        theirs = replies.create_draft(session, case_id=case_id, member_id=lead, text="Hi!")
        replies.reserve_send(session, reply_id=theirs.id or 0, member_id=lead, settings=settings)
    with session_scope() as session, pytest.raises(ReplyCollision, match="Lea already answered"):
        publish.confirm_manual_send(session, reply_id=reply_id, member_id=agent, settings=settings)


def test_publisher_needs_credentials() -> None:
    settings = Settings()
    assert publish.publisher_for("x", settings, Secrets()) is None
    assert publish.publisher_for("youtube", settings, Secrets()) is None
    assert publish.publisher_for("bluesky", settings, Secrets(bluesky_handle="a")) is None
    mastodon = publish.publisher_for("mastodon", settings, Secrets(mastodon_token=SecretStr("t")))
    assert isinstance(mastodon, publish.MastodonPublisher)
    assert mastodon.base_url == "https://mastodon.social"
