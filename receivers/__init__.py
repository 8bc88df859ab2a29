"""The edge: thin aiohttp receivers that authenticate each sender and land the exact bytes in Kafka.

A request becomes a `RawRequest`; the sender's verifier turns it into a verdict; only an `Accepted`
verdict can become a `Delivery`, and only a delivery acknowledged by Kafka earns a 2xx.
This package never imports Faust.
"""
