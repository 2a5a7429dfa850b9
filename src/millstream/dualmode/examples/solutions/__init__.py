"""Solutions to the exercises; each runs like an example (``python -m ...solutions.<name>``)."""
