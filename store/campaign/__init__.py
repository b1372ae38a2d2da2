"""The local campaign store: activated audiences, their members and history, deliveries."""
