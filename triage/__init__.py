"""Triage rules: SLA clocks, priority, intake, routing, cases, replies and publishing (no UI)."""
