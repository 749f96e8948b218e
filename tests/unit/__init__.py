"""Offline unit tests of lablib's pure rooms: see conftest.py."""
