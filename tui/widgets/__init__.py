"""Widgets shared by the app's screens: the paged table, pickers, help and palette pieces."""
