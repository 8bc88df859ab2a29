"""The ACLs of each role (SPEC §7), derived from the same topic names the services use (`Topics`), and
applied over Kafka's own CreateAcls request.

Each role may do its own job and nothing more: a stolen receivers credential cannot read one event, a
consumer service cannot forge a raw delivery. Where a broad ALLOW (a topic prefix) would cover topics a
role must not touch, a DENY on the narrower prefix takes them out again: Kafka's StandardAuthorizer lets
a DENY win over any ALLOW.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.protocol.admin import CreateAclsRequest

from hookstream import clients
from hookstream.errors import HookstreamError
from hookstream.settings import Settings
from hookstream.topics import Topics

log = logging.getLogger(__name__)

ROLES = ("receivers", "worker", "poller", "reader", "admin")
ANY_HOST = "*"
CLUSTER = "kafka-cluster"


# Kafka's wire codes of ACL resources, patterns, operations and permissions (org.apache.kafka.common.acl).
class Resource(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class Pattern(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    ALTER = 7
    DESCRIBE = 8


class Permission(IntEnum):
    DENY = 2
    ALLOW = 3


@dataclass(frozen=True, slots=True)
class Acl:
    principal: str
    permission: Permission
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation

    def __str__(self) -> str:
        kinds = (self.permission.name, self.resource.name, self.pattern.name)
        return "\t".join((self.principal, *kinds, self.name, self.operation.name))


def principal(role: str) -> str:
    """A role's Kafka principal: its SASL user name (or, for a client certificate, its mapped CN)."""
    return f"User:{role}"


def role_acls(role: str, namespace: str, who: str | None = None) -> list[Acl]:
    """The ACLs of `role` for `namespace`, for principal `who` (default: the role's own user)."""
    if role not in ROLES:
        raise HookstreamError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    topics = Topics(namespace)
    everything, raw, internal = f"{namespace}.", topics.raw_prefix, topics.internal_prefix
    allow, deny = Permission.ALLOW, Permission.DENY
    topic, group, txn = Resource.TOPIC, Resource.GROUP, Resource.TRANSACTIONAL_ID
    prefixed, literal = Pattern.PREFIXED, Pattern.LITERAL
    op = Operation
    rules: dict[str, list[tuple[Permission, Resource, Pattern, str, Operation]]] = {
        "receivers": [(allow, topic, prefixed, raw, op.WRITE), (allow, topic, prefixed, raw, op.DESCRIBE)],
        "worker": [
            (allow, topic, prefixed, raw, op.READ),
            (allow, topic, prefixed, internal, op.READ),
            (allow, topic, prefixed, everything, op.WRITE),
            (allow, topic, prefixed, everything, op.CREATE),
            (deny, topic, prefixed, raw, op.WRITE),
            (allow, group, literal, namespace, op.READ),  # Faust's normalize stage: the app id
            (allow, group, literal, f"{namespace}-dedup", op.READ),
            (allow, txn, prefixed, f"{namespace}-dedup-", op.WRITE),
        ],
        "poller": [
            (allow, topic, literal, topics.raw("hootsuite"), op.WRITE),
            *((allow, topic, literal, topics.poller_state, o) for o in (op.READ, op.WRITE, op.CREATE)),
        ],
        "reader": [
            (allow, topic, prefixed, everything, op.READ),
            (deny, topic, prefixed, raw, op.READ),
            (deny, topic, prefixed, internal, op.READ),
            (allow, group, prefixed, f"{namespace}-reader", op.READ),
        ],
        "admin": [
            (allow, topic, prefixed, everything, op.ALL),
            (allow, group, prefixed, namespace, op.ALL),
            (allow, txn, prefixed, namespace, op.ALL),
            (allow, Resource.CLUSTER, literal, CLUSTER, op.ALTER),  # create and delete ACLs
            (allow, Resource.CLUSTER, literal, CLUSTER, op.DESCRIBE),  # list them
        ],
    }
    return [Acl(who or principal(role), *rule) for rule in rules[role]]


def all_acls(namespace: str, roles: Sequence[str] = ROLES) -> list[Acl]:
    return [acl for role in roles for acl in role_acls(role, namespace)]


def table(acls: Iterable[Acl]) -> str:
    """The ACLs in Kafka's terms, one a line, under a header (tab-separated, for `column -t`)."""
    header = "\t".join(("PRINCIPAL", "PERMISSION", "RESOURCE_TYPE", "PATTERN_TYPE", "NAME", "OPERATION"))
    return "\n".join([header, *(str(acl) for acl in acls)])


async def apply(settings: Settings, acls: Sequence[Acl]) -> None:
    """Create `acls` on the cluster with the credentials of `settings` (which need CLUSTER ALTER).
    Creating an ACL that exists already is no error, so applying twice is harmless."""
    admin = clients.admin(settings)
    await admin.start()
    try:
        for acl in acls:
            request = CreateAclsRequest(
                acl.resource, acl.name, acl.pattern, acl.principal, ANY_HOST, acl.operation, acl.permission
            )
            # aiokafka has no create_acls; its CreateAcls request struct is sent by the admin client's
            # own sender (private, but the only way without a second Kafka client library).
            response = await admin._send_request(request)
            for code, message in response.creation_responses:
                if code != 0:
                    raise HookstreamError(f"Kafka refused the ACL [{acl}]: error {code} {message}")
    finally:
        await admin.close()
    log.info("ACLs applied", extra={"count": len(acls)})
