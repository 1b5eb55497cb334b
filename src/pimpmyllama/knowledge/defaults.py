"""Default knowledge-base settings. Chunk size and overlap are in embedder tokens;
the defaults were chosen by measurement (bench/chunking.py, see the README)."""

CHUNK_SIZE = 128
OVERLAP = 25
TOP_K = 4
