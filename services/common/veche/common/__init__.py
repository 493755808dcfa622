"""Shared library of the veche services: settings, logging, errors, keys, events, clients."""
