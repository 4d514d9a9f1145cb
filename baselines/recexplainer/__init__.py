"""RecExplainer (Lei et al., KDD'24): an LLM aligned to imitate a trained recommender, then asked to explain it."""
