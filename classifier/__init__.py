"""Scoring: one encoder, several heads (sentiment, urgency, complaint), plus buzz-risk fusion."""
