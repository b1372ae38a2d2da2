"""Importing files into a store: readers, type inference and the all-or-nothing importer."""
