"""hookstream: code shared by the receivers, the processor and the CLI.

Settings, topic and header names, errors, the local Kafka launcher and the CLI live here. This package
imports neither aiohttp nor Faust, so each service pulls in only what it runs.
"""
