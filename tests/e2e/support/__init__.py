"""Helpers of the e2e tests: the browser driver and the LiveKit SDK participants."""
