"""The board as a person uses it: `tocsin board` (streamlit run) on 127.0.0.1, driven by Debian's
headless Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import Case, Reply
from tests.board.factories import HOSTILE_TEXT, PASSWORDS, Seeded, add_scored_case

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def board_url(
    request: pytest.FixtureRequest, seeded: Seeded, sqlite_url: str, tmp_path: Path
) -> Iterator[str]:
    """`tocsin board` on a free port; parametrise indirectly to set the refresh seconds."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        TOCSIN_DATABASE_URL=sqlite_url,
        TOCSIN_CONFIG=os.environ["TOCSIN_CONFIG"],
        TOCSIN_DATA_DIR=str(tmp_path / "data"),
        TOCSIN_BOARD__BASE_URL=f"http://127.0.0.1:{port}",
        TOCSIN_BOARD__REFRESH_SECONDS=str(getattr(request, "param", 15)),
    )
    log = (tmp_path / "board.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tocsin", "board", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "board.log").read_text()
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the board did not start"
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _sign_in(page: Page, url: str, email: str = "sam@example.org") -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_role("textbox", name="Password").fill(PASSWORDS[email])
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_open_the_top_case_and_reply(
    board_url: str, browser: Browser, seeded: Seeded, artifacts_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1500})
    _sign_in(page, board_url)
    expect(page.get_by_role("heading", name="Queue")).to_be_visible(timeout=30_000)
    expect(page.locator("[class*='st-key-case_row_']")).to_have_count(4, timeout=30_000)
    expect(page.get_by_role("link", name="Open", exact=True)).to_have_count(4, timeout=30_000)
    _settled(page)
    page.screenshot(path=str(artifacts_dir / "board-queue.png"))
    top = seeded.case_ids[0]
    page.get_by_role("link", name="Open", exact=True).first.click()
    expect(page.get_by_role("heading", name=f"Case #{top}")).to_be_visible(timeout=30_000)
    assert page.url.endswith(f"/case?id={top}")
    page.get_by_role("button", name="Claim").first.click()
    expect(page.get_by_text(f"You hold case #{top}.")).to_be_visible(timeout=30_000)
    _compose_and_send(page)
    expect(page.get_by_text("Reply sent and recorded.")).to_be_visible(timeout=30_000)
    _settled(page)
    page.locator("[data-testid='stMain']").evaluate("main => main.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "board.png"))
    with session_scope() as session:
        case = session.get(Case, top)
        assert case is not None and case.first_response_at is not None
        replies = list(session.execute(select(Reply).where(col(Reply.case_id) == top)).scalars())
    assert [(r.action, r.status) for r in replies] == [("dm_invite", "sent")]


def _settled(page: Page) -> None:
    """Wait until the script run is over and no element is still a loading placeholder."""
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=30_000)
    page.locator("[data-stale='true']").first.wait_for(state="detached", timeout=30_000)
    page.wait_for_timeout(500)  # the last paint (screenshots only; no assertion depends on it)


def _compose_and_send(page: Page) -> None:
    message = page.get_by_role("textbox", name="Message")
    message.fill("Hi {first_name}, so sorry about your flight. I'm {agent} and I'm on it.")
    message.press("Control+Enter")
    page.get_by_text("Invite to DM").click()
    expect(page.get_by_text("Hi Jo, so sorry about your flight")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Send reply").click()
    page.get_by_role("button", name="I posted it").click()


def test_hostile_post_renders_as_plain_text(
    board_url: str, browser: Browser, seeded: Seeded
) -> None:
    page = browser.new_page()
    _sign_in(page, f"{board_url}/case?id={seeded.hostile_case_id}")
    heading = page.get_by_role("heading", name=f"Case #{seeded.hostile_case_id}")
    expect(heading).to_be_visible(timeout=30_000)
    post = page.locator(".st-key-post_text")
    expect(post).to_contain_text(HOSTILE_TEXT)
    assert post.inner_text().strip() == HOSTILE_TEXT
    author = page.locator(".st-key-author_card")
    expect(author).to_contain_text("<b>Mallory</b> **bold**")
    expect(author).to_contain_text("<script>alert('bio')</script> _italic_")
    # Nothing of it became markup: no injected script, image, link, bold or heading.
    assert page.title() != "pwned"
    app = page.locator("[data-testid='stApp']")
    assert app.locator("script").count() == 0
    assert app.locator("img[src='x']").count() == 0
    assert app.locator("a[href^='javascript']").count() == 0
    assert post.locator("strong, b, h1, em, i").count() == 0
    assert author.locator("strong, b, em, i").count() == 0


@pytest.mark.parametrize("board_url", [2], indirect=True)
def test_queue_refreshes_by_itself(board_url: str, browser: Browser, seeded: Seeded) -> None:
    page = browser.new_page()
    _sign_in(page, board_url)
    rows = page.locator("[class*='st-key-case_row_']")
    expect(rows).to_have_count(4, timeout=30_000)
    # A new urgent case arrives (the service's intake) while the page stays open, untouched.
    with session_scope() as session:
        case_id, _ = add_scored_case(
            session,
            n=50,
            brand_id=seeded.brand_id,
            text="Acme Air plane smells of smoke, crew not answering",
            tier="critical",
            priority=99.0,
        )
    expect(rows).to_have_count(5, timeout=30_000)
    expect(rows.first).to_contain_text("plane smells of smoke")
    expect(rows.first).to_contain_text(f"#{case_id}")
