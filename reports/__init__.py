"""The weekly reputation report: figures from storage, charts, HTML and PDF, sending by email."""
