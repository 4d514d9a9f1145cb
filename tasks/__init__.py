"""Multi-task SFT data builders (LC-Rec task family)."""
