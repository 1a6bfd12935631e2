"""The landmark-recognition pipeline: its definition, compilation and local runs."""
