"""The version, alone in a module so that any part of the package can read it without importing the whole."""
__version__ = "0.1.0"
