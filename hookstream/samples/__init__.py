"""Example deliveries `hookstream demo` sends: copies of the senders' documented payloads from
tests/fixtures (the package cannot read the tests), shipped as package data."""
