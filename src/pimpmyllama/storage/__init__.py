"""The database: one schema, applied by numbered migrations, on SQLite by default."""
