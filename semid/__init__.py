"""Item codebooks: text embeddings -> quantizer -> unique semantic IDs."""
