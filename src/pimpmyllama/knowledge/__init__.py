"""Knowledge bases (RAG): loaders, chunking, embedders, storage and hybrid retrieval."""
