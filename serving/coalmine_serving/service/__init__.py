"""The model service: load and warm up, predict, join delayed feedback. No HTTP types here."""
