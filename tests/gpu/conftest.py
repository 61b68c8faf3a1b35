"""Markers of the GPU tests."""


def pytest_configure(config):
    config.addinivalue_line("markers", "small: a few small launches, the cases racecheck and synccheck run")
