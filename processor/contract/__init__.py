"""The published consumer contract (SPEC §10), generated from the code that makes the records.

`envelope`: the CloudEvent envelope with hookstream's extensions, and the raw and dead-letter records'
headers. `asyncapi`: the AsyncAPI 3.0 document of every topic hookstream owns. `files`: writes both and
the normalizers' data schemas into the repository, and checks the checked-in files (`hookstream schemas`).
Nothing here imports Faust.
"""
