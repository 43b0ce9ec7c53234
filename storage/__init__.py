"""Storage: the only shared state between Tocsin's stages (tables, engine, queries, migrations)."""
