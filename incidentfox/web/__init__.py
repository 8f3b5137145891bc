"""The local web workspace and the config console (design §5): static pages and their small routes."""
