"""Peers: the same job written with other tools, measured beside hookstream in the same run."""
