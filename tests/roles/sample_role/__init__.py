"""A complete minimal role that only the tests register (tests/roles/test_sample_role.py); shipped nowhere."""
