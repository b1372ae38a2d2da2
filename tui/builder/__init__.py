"""The segment builder: rule tree, live preview, value editors, pickers and the YAML view."""
