"""The example app: the clock, the chat and the live notes page."""
