"""The demo's configuration, team and passwords (printed at start; demo only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomli_w

BRANDS = (
    {
        "name": "Altavia Airways",
        "slug": "altavia",
        "keywords": ["altavia"],
        "handles": ["@altavia", "@altavia_help"],
        "excluded_terms": ["altavia resort"],
        "languages": ["en", "fr", "es", "it"],
    },
    {
        "name": "Fennel Mobile",
        "slug": "fennel",
        "keywords": ["fennel mobile", "fennelmobile"],
        "handles": ["@fennelmobile"],
        "excluded_terms": ["fennel seeds"],
        "languages": ["en", "fr", "es", "it"],
    },
)


@dataclass(frozen=True)
class DemoMember:
    name: str
    email: str
    role: str
    languages: tuple[str, ...]
    skills: tuple[str, ...]
    password: str
    requires_approval: bool = False


TEAM = (
    DemoMember(
        "Léa Martin",
        "lea@tocsin.demo",
        "lead",
        ("en", "fr"),
        ("outage", "billing"),
        "lea-demo-2026",
    ),
    DemoMember(
        "Sam Okafor", "sam@tocsin.demo", "agent", ("en",), ("baggage", "delays"), "sam-demo-2026"
    ),
    DemoMember(
        "Lucía Romero",
        "lucia@tocsin.demo",
        "agent",
        ("es", "en"),
        ("refunds", "billing"),
        "lucia-demo-2026",
    ),
    DemoMember(
        "Marco Bellini",
        "marco@tocsin.demo",
        "agent",
        ("it", "fr", "en"),
        ("network",),
        "marco-demo-2026",
        requires_approval=True,
    ),
)


def feed_path(demo_dir: Path, slug: str) -> Path:
    return demo_dir / "feeds" / f"{slug}.jsonl"


def demo_config(
    demo_dir: Path,
    *,
    port: int,
    collect_seconds: int,
    pipeline_seconds: int,
    model_weights: Path | None = None,
) -> dict:
    """The demo's tocsin.toml as a dict: brands, a replay source each, team, mailbox alerts."""
    mailbox = demo_dir / "alerts.mbox"
    return {
        "data_dir": str(demo_dir),
        "timezone": "Europe/Paris",
        "brands": [{k: v for k, v in brand.items() if k != "slug"} for brand in BRANDS],
        "sources": [
            {
                "name": f"{brand['slug']}-replay",
                "kind": "replay",
                "brand": brand["name"],
                "base_url": feed_path(demo_dir, str(brand["slug"])).resolve().as_uri(),
                "interval_seconds": collect_seconds,
            }
            for brand in BRANDS
        ],
        "team": [
            {
                "name": m.name,
                "email": m.email,
                "role": m.role,
                "languages": list(m.languages),
                "skills": list(m.skills),
                "max_open_cases": 12,
                "on_shift": True,
                "requires_approval": m.requires_approval,
            }
            for m in TEAM
        ],
        "alerts": {
            "channels": [{"name": "demo-mailbox", "type": "mailbox", "path": str(mailbox)}],
            "rules": [
                {
                    "name": "critical",
                    "kind": "urgency",
                    "channels": ["demo-mailbox"],
                    "recipients": ["lea@tocsin.demo"],
                },
                {
                    "name": "high-risk",
                    "kind": "buzz_risk",
                    "threshold": 70,
                    "channels": ["demo-mailbox"],
                    "recipients": ["lea@tocsin.demo"],
                },
                {
                    "name": "sla",
                    "kind": "sla",
                    "threshold": 5,
                    "channels": ["demo-mailbox"],
                    "recipients": ["lea@tocsin.demo"],
                },
                {
                    "name": "spike",
                    "kind": "spike",
                    "channels": ["demo-mailbox"],
                    "recipients": ["lea@tocsin.demo"],
                },
                {
                    "name": "incident",
                    "kind": "incident",
                    "channels": ["demo-mailbox"],
                    "recipients": ["lea@tocsin.demo"],
                },
            ],
        },
        "service": {"pipeline_seconds": pipeline_seconds},
        "board": {"base_url": f"http://127.0.0.1:{port}", "port": port},
        "model": {"weights": str(model_weights.resolve())} if model_weights else {},
    }


def write_config(path: Path, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `tocsin demo`: the demo's settings (rewritten at every demo start).\n"
    path.write_text(header + tomli_w.dumps(config), encoding="utf-8")
