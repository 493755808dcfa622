"""e2e tests use the session fixtures `stack` and `gw` of tests/conftest.py."""
