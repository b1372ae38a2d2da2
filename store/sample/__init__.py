"""The deterministic sample store generator and the pools it draws from."""
