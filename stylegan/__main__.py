"""`python -m stylegan`: the same command line as `stylegan`."""
from scripts.cli import main

if __name__ == "__main__":
    main(prog_name="stylegan")
