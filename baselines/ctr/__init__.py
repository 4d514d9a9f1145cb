"""Click-through-rate prediction on MovieLens: ID models (DeepFM, DCNv2) and the two methods that align one with
a pretrained language model, FLIP and ClickPrompt. Rows, labels, the chronological split and the text of a row
are in `data`; AUC and log loss come from genrec.evaluate."""

CTR_METHODS = ("deepfm", "dcnv2", "flip", "flip-id", "clickprompt", "clickprompt-ctr")
