"""The Audiences engine: profile store, import, segment model, compiler, activation.

Nothing in this package imports the terminal UI; it can be used from scripts.
"""
