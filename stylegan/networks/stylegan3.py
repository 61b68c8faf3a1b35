"""stylegan3 networks (being written)."""
