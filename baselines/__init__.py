"""Other LLM-for-recommendation methods and ID-based models, evaluated by genrec.evaluate."""
