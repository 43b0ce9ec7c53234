"""Escalation alerts: rules that write to an outbox, notifiers that deliver it.

- `alerts.engine.evaluate_rules(session, *, settings, now=None) -> int` writes alerts.
- `alerts.outbox.deliver_pending(*, settings, now=None) -> DeliveryReport` sends what is due.

See alerts/README.md for the spike test and the delivery guarantees.
"""
