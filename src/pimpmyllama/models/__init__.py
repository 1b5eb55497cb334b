"""The model store: import, list, show, remove; loading; the bundled defaults."""
