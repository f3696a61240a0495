"""Cache stores and where they live."""
