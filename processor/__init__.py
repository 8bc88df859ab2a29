"""The processor: a Faust app that turns raw deliveries into validated CloudEvents on downstream topics.

The core is pure (`normalize/`, `cloudevents`, `route`): a raw record in, events or an `Invalid` out.
`app` and `pipeline` are the edges that read and write Kafka.
"""
