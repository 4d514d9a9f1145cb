"""Other LLM-for-recommendation methods and ID-based models, evaluated by genrec.evaluate."""

METHODS = ("sasrec", "sasrec-bce", "gru4rec", "gru4rec-bce", "bert4rec", "elephant", "elephant-plm",
           "elephant-random", "llmesr", "knowledge", "knowledge-frozen")
