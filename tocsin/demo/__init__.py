"""The demo behind `make run`: two fictional brands, a replay source fed over time, a known team."""
