"""Local servers and a tocsin.toml for running the whole pipeline: a JSON-lines feed over HTTP,
an SMTP server and a webhook receiver, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

POSTS: list[dict[str, Any]] = [
    {
        "id": "p1",
        "text": "Acme Air lost my passport at the gate, my flight leaves in one hour. Help now!",
        "author": {"handle": "stranded_sam", "followers": 250000, "verified": True},
        "likes": 40,
        "reposts": 25,
    },
    {
        "id": "p2",
        "text": "Acme Air cancelled my flight, I want a refund. Worst airline ever, lawyer next.",
        "author": {"handle": "angry_ann", "followers": 1200},
    },
    {
        "id": "p3",
        "text": "Acme Air charged my card twice for the same ticket, fraud? Nobody answers.",
        "author": {"handle": "billing_bo", "followers": 300},
    },
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def feed_server(folder: Path, posts: list[dict[str, Any]]) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feed.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8"
    )

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed.jsonl"
    finally:
        server.shutdown()
        server.server_close()


class Inbox:
    """What the SMTP server accepted. While `stall` is set, DATA hangs, then answers 451."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.stall = threading.Event()
        self.stalled = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall.is_set():
            self.stalled.set()
            while self.stall.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 try again later"
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@contextmanager
def webhook_receiver() -> Iterator[tuple[list[dict[str, Any]], str]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"headers": dict(self.headers), "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def untrained_model(folder: Path) -> Path:
    """A real model folder: the packaged encoder with fresh, seeded heads. The pipeline test
    checks the plumbing, not the scores, so it does not wait for the trained weights."""
    import torch

    from classifier.model import new_model, save_model

    torch.manual_seed(0)
    save_model(new_model(), folder, trained_layers=[])
    return folder


def write_config(
    path: Path,
    *,
    feed: str | None,
    smtp_port: int,
    hook: str | None,
    data_dir: Path,
    model: Path | None = None,
) -> Path:
    channels = ['[[alerts.channels]]\nname = "leads-email"\ntype = "smtp"\n']
    rule_channels = ['"leads-email"']
    if hook:
        channels.append(f'[[alerts.channels]]\nname = "hook"\ntype = "webhook"\nurl = "{hook}"\n')
        rule_channels.append('"hook"')
    source = (
        f'[[sources]]\nname = "feed"\nkind = "replay"\nbrand = "Acme Air"\nbase_url = "{feed}"\n'
        "interval_minutes = 60\n"
        if feed
        else ""
    )
    path.write_text(
        f"""
data_dir = "{data_dir}"
timezone = "Europe/Paris"

[[brands]]
name = "Acme Air"
keywords = ["acme air"]

{source}
[[team]]
name = "Lea Martin"
email = "lea@example.org"
role = "lead"
languages = ["en"]
on_shift = true
max_open_cases = 10

[triage]
case_min_buzz_risk = 0

{f'[model]{chr(10)}weights = "{model}"{chr(10)}' if model else ""}
[board]
base_url = "http://board.example"

[alerts.smtp]
host = "127.0.0.1"
port = {smtp_port}
sender = "tocsin@example.org"

{"".join(channels)}
[[alerts.rules]]
name = "every-case"
kind = "buzz_risk"
threshold = 0
channels = [{", ".join(rule_channels)}]
recipients = ["lea@example.org"]
""",
        encoding="utf-8",
    )
    return path
