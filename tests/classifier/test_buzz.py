"""Buzz risk: monotonic in every input (hypothesis), bounded, and explained in plain words."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.buzz import (
    BuzzInputs,
    buzz_risk,
    classify_profile,
    humanise_count,
    text_threats,
)

THREAT_NAMES = (
    "mentions a lawyer",
    "mentions the press",
    "safety or health issue",
    "calls for a boycott",
)

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
rate = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)
inputs = st.builds(
    BuzzInputs,
    complaint_severity=st.integers(0, 4),
    complaint_score=unit,
    negativity=unit,
    urgency_score=unit,
    threats=st.lists(st.sampled_from(THREAT_NAMES), max_size=3, unique=True).map(tuple),
    followers=st.integers(0, 50_000_000),
    verified=st.booleans(),
    vip=st.booleans(),
    journalist=st.booleans(),
    engagement_per_minute=rate,
    reposts_per_minute=rate,
    usual_per_minute=st.floats(min_value=0.01, max_value=50.0, allow_nan=False),
    similar_negative_last_hour=st.integers(0, 500),
)


def _risk(value: BuzzInputs) -> float:
    return buzz_risk(value).score


@settings(max_examples=300, deadline=None)
@given(inputs, st.integers(0, 4))
def test_rises_with_complaint_severity(base: BuzzInputs, more: int) -> None:
    higher = replace(base, complaint_severity=max(base.complaint_severity, more))
    assert _risk(higher) >= _risk(base)


@settings(max_examples=300, deadline=None)
@given(inputs, unit, unit, unit)
def test_rises_with_negativity_complaint_score_and_urgency(
    base: BuzzInputs, negativity: float, complaint: float, urgency: float
) -> None:
    for field, value in (
        ("negativity", negativity),
        ("complaint_score", complaint),
        ("urgency_score", urgency),
    ):
        change: dict[str, Any] = {field: max(getattr(base, field), value)}
        higher = replace(base, **change)
        assert _risk(higher) >= _risk(base), field


@settings(max_examples=300, deadline=None)
@given(inputs, st.sampled_from(THREAT_NAMES))
def test_rises_with_a_threat_in_the_text(base: BuzzInputs, threat: str) -> None:
    higher = replace(base, threats=tuple(dict.fromkeys((*base.threats, threat))))
    assert _risk(higher) >= _risk(base)


@settings(max_examples=300, deadline=None)
@given(inputs, st.integers(0, 50_000_000))
def test_rises_with_followers(base: BuzzInputs, followers: int) -> None:
    higher = replace(base, followers=max(base.followers, followers))
    assert _risk(higher) >= _risk(base)


@settings(max_examples=300, deadline=None)
@given(inputs)
def test_rises_with_verified_vip_and_journalist(base: BuzzInputs) -> None:
    for field in ("verified", "vip", "journalist"):
        change: dict[str, Any] = {field: True}
        assert _risk(replace(base, **change)) >= _risk(base), field


@settings(max_examples=300, deadline=None)
@given(inputs, rate, rate)
def test_rises_with_velocity(base: BuzzInputs, engagement: float, reposts: float) -> None:
    faster = replace(base, engagement_per_minute=max(base.engagement_per_minute, engagement))
    assert _risk(faster) >= _risk(base)
    reposting = replace(base, reposts_per_minute=max(base.reposts_per_minute, reposts))
    assert _risk(reposting) >= _risk(base)


@settings(max_examples=300, deadline=None)
@given(inputs, st.integers(0, 500))
def test_rises_with_similar_negative_posts(base: BuzzInputs, similar: int) -> None:
    higher = replace(base, similar_negative_last_hour=max(base.similar_negative_last_hour, similar))
    assert _risk(higher) >= _risk(base)


@settings(max_examples=300, deadline=None)
@given(inputs)
def test_bounded_with_a_consistent_tier(value: BuzzInputs) -> None:
    result = buzz_risk(value)
    assert 0.0 <= result.score <= 100.0
    expected = (
        "critical"
        if result.score >= 80
        else "high"
        if result.score >= 60
        else "medium"
        if result.score >= 30
        else "low"
    )
    assert result.tier == expected


def test_clear_situations_land_in_sensible_tiers() -> None:
    quiet_praise = BuzzInputs(negativity=0.02, followers=120)
    angry_nobody = BuzzInputs(
        complaint_severity=4, complaint_score=0.95, negativity=0.95, urgency_score=0.6, followers=80
    )
    angry_journalist = replace(angry_nobody, followers=250_000, journalist=True, verified=True)
    assert buzz_risk(quiet_praise).tier == "low"
    assert buzz_risk(angry_nobody).score < buzz_risk(angry_journalist).score
    assert buzz_risk(angry_journalist).tier == "critical"


def test_reasons_are_short_and_human() -> None:
    result = buzz_risk(
        BuzzInputs(
            complaint_severity=3,
            complaint_score=0.9,
            negativity=0.9,
            followers=250_000,
            journalist=True,
            reposts_per_minute=20,
            engagement_per_minute=40,
            similar_negative_last_hour=12,
            threats=("mentions a lawyer",),
        )
    )
    assert "author has 250k followers" in result.reasons
    assert "reposts growing 20/min" in result.reasons
    assert "mentions a lawyer" in result.reasons
    assert "author is a journalist" in result.reasons
    assert "12 similar negative posts in the last hour" in result.reasons
    assert all(len(reason) <= 60 for reason in result.reasons)
    assert humanise_count(1_300_000) == "1.3M" and humanise_count(999) == "999"


def test_threats_in_several_languages() -> None:
    assert text_threats("I'm calling my lawyer tomorrow") == ("mentions a lawyer",)
    assert "mentions a lawyer" in text_threats("J'appelle mon avocat demain")
    assert "mentions a lawyer" in text_threats("Voy a llamar a mi abogado")
    assert "mentions a lawyer" in text_threats("Chiamo il mio avvocato")
    assert "mentions a lawyer" in text_threats("Ich gehe zum Anwalt")
    assert "safety or health issue" in text_threats("my son ended up in hospital, allergic")
    assert text_threats("great coffee this morning") == ()
    assert text_threats("the courtyard was nice") == ()  # whole words only


def test_journalist_and_vip_from_bio_flags_or_lists() -> None:
    assert classify_profile(bio="Reporter @ Daily News. Views mine.").journalist
    assert classify_profile(bio="Journaliste au Monde").journalist
    assert classify_profile(bio="Periodista en El País").journalist
    assert classify_profile(bio="Giornalista freelance").journalist
    assert classify_profile(bio="Redakteurin bei der Zeit").journalist
    assert classify_profile(bio="Fondatrice & CEO").vip
    assert not classify_profile(bio="I like cats and coffee").journalist
    assert classify_profile(bio=None, handle="@BigStar", vip_handles=["bigstar"]).vip
    assert classify_profile(bio="", journalist_flag=True).journalist
    assert classify_profile(bio="food critic", extra_journalist_words=["food critic"]).journalist
