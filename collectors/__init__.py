"""Collectors: Scrapy spiders that poll public brand mentions into storage (see DESIGN.md)."""
