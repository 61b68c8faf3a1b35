"""Small helpers shared by ops, networks and the rest of the library."""
