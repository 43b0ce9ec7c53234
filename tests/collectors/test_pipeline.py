"""Brand matching and batched storing (real databases)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from collectors.items import AuthorInfo, MentionItem
from collectors.pipelines import BrandMatcher, item_problem, mark_deleted, store_batch
from collectors.spiders.base import BrandRules, MentionSpider, SourceSpec
from storage.db import session_scope
from storage.models import Author, Brand, Mention, Source

ACME = BrandRules(
    name="Acme Air",
    keywords=["acme air", "acmeair", "#acmeair"],
    handles=["@acmeair", "acmeair_help"],
    excluded_terms=["acme air fryer"],
)


def post(text: str, *, title: str | None = None, author: str | None = None) -> MentionItem:
    return MentionItem(
        platform="test",
        external_id=str(abs(hash(text))),
        text=text,
        title=title,
        author=AuthorInfo(handle=author) if author else None,
    )


def test_keywords_and_handles_match_with_reasons() -> None:
    matcher = BrandMatcher(ACME, source_name="s", match_all=False)
    verdict = matcher.match(post("Stuck at JFK, ACME  Air gate agents clueless @acmeair"))
    assert verdict.keep
    assert verdict.reason == 'keyword "acme air"; handle @acmeair'
    assert matcher.match(post("Anyone flown #AcmeAir lately?")).reason == 'keyword "#acmeair"'
    assert matcher.match(post("hi @acmeair_help my bag")).reason == "handle acmeair_help"
    assert matcher.match(post("x", title="AcmeAir strike")).keep


def test_no_match_excluded_terms_and_own_posts_are_skipped() -> None:
    matcher = BrandMatcher(ACME, source_name="s", match_all=False)
    assert matcher.match(post("acme airline? acmeairport")).reason == "does not mention the brand"
    assert not matcher.match(post("my Acme Air fryer broke")).keep
    assert matcher.match(post("my Acme Air fryer broke")).reason == 'excluded term "acme air fryer"'
    own = matcher.match(post("Acme Air: all flights on time", author="@AcmeAir"))
    assert not own.keep and own.reason == "posted by the brand's own account"
    assert not matcher.match(post("not @acmeair2 either")).keep


def test_match_all_sources_keep_everything_but_excluded_terms() -> None:
    matcher = BrandMatcher(ACME, source_name="ios", match_all=True)
    assert matcher.match(post("Great app")).reason == "source ios: source keeps every post"
    assert not matcher.match(post("acme air fryer ad")).keep
    assert BrandMatcher(None, source_name="x", match_all=False).match(post("hello")).keep


def test_item_problems() -> None:
    assert item_problem({"not": "an item"}) is not None
    assert item_problem(MentionItem(platform="", external_id="1")) == "no platform"
    assert item_problem(MentionItem(platform="p", external_id="")) == "no external id"
    assert item_problem(post("fine")) is None


def test_store_batch_counts_new_then_updated(db_url: str) -> None:
    with session_scope() as session:
        brand = Brand(name="Acme Air")
        session.add(brand)
        session.flush()
        source = Source(name="s", kind="replay", brand_id=brand.id)
        session.add(source)
        session.flush()
        ids = (brand.id, source.id)
    spec = SourceSpec(
        name="s", kind="replay", source_id=ids[1], brand=BrandRules(name="Acme Air", id=ids[0])
    )
    spider = MentionSpider(source=spec)
    batch = [
        MentionItem(
            platform="t",
            external_id="1",
            text="Acme Air a",
            author=AuthorInfo(handle="ann", followers=10),
            likes=1,
            matched_reason='keyword "acme air"',
        ),
        MentionItem(
            platform="t", external_id="2", text="Acme Air b", author=AuthorInfo(handle="ann")
        ),
        MentionItem(platform="t", external_id="x" * 400, text="id too long"),
    ]
    store_batch(spider, batch)
    assert (spider.counters["new"], spider.counters["updated"], spider.counters["errors"]) == (
        2,
        0,
        1,
    )
    store_batch(spider, batch[:1])
    assert spider.counters["updated"] == 1
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(Mention)).scalar_one() == 2
        assert session.execute(select(func.count()).select_from(Author)).scalar_one() == 1
        query = select(Mention).where(col(Mention.external_id) == "1")
        stored = session.execute(query).scalar_one()
        assert stored.source_id == ids[1] and stored.brand_id == ids[0]
        assert stored.matched_reason == 'keyword "acme air"'


def test_deleted_posts_flag_what_is_stored_and_nothing_else(sqlite_url: str) -> None:
    spider = MentionSpider(source=SourceSpec(name="s", kind="replay"))
    store_batch(spider, [MentionItem(platform="t", external_id="1", text="Acme Air is awful")])
    gone = [
        MentionItem(platform="t", external_id="1", deleted=True),
        MentionItem(platform="t", external_id="never-stored", deleted=True),
    ]
    mark_deleted(spider, gone)
    assert spider.counters["updated"] == 1
    with session_scope() as session:
        rows = session.execute(select(Mention)).scalars().all()
    assert [(m.external_id, m.deleted, m.text) for m in rows] == [("1", True, "")]
