"""The release version, in a module of its own so that any layer can name it without importing the package
root back (the root re-exports everything, so importing it from below would be a cycle)."""

__version__ = "0.1.0"
