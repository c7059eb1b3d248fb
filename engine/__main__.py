"""`python -m engine` is the mobstore command."""

from .cli import main

if __name__ == "__main__":
    main()
