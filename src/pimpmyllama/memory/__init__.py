"""Conversation memory: sessions and their turns, pinned facts."""
