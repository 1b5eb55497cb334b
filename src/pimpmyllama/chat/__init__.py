"""A chat turn, end to end: build -> session -> packer -> engine -> session."""
