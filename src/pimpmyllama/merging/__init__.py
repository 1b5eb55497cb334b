"""Merging: mergekit-compatible recipes, one module per method, streamed tensor by tensor."""
