"""hookstream: code shared by the receivers, the processor and the CLI.

Settings, topic and header names, errors, the local Kafka launcher and the CLI live here. This package
never imports Faust; only `hookstream.web` (the /metrics page of the worker and the poller) and the X API
client behind `hookstream x …` (`xapi`, `xsetup`, `xcommands`) import aiohttp, so the CLI and
`hookstream kafka …` load neither.
"""
