"""The Audiences terminal app and the command line that launches it."""
