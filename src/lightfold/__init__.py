"""lightfold: deploy a web project to a Linux server with one command."""

__version__ = "0.1.0"
