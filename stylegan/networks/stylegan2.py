"""stylegan2 networks (being written)."""
