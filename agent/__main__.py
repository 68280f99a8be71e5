"""`python -m agent` runs the ml-intern command."""

from agent.cli import entry

if __name__ == "__main__":
    entry()
