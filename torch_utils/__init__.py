"""Small PyTorch helpers shared by ops and networks."""
