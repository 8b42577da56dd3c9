"""Helpers the test modules share: servers, payload builders, waits, store shortcuts."""
