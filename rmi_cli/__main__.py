"""`python -m rmi_cli` runs the CLI."""

from rmi_cli.cli.app import main

if __name__ == "__main__":
    main()
