"""No Kafka client may bypass `hookstream.clients` (and with it the security settings), and the ACLs
each role gets are exactly its job's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hookstream.acls import Acl, Operation, Pattern, Permission, Resource, role_acls, table
from hookstream.errors import HookstreamError
from hookstream.securekafka import SecureNode, override
from tests.support import run_cli

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    path
    for package in ("hookstream", "receivers", "processor", "bench", "tests")
    for path in (ROOT / package).rglob("*.py")
]
# A client built by hand, or handed a bootstrap address, would miss the security settings.
CONSTRUCTION = re.compile(r"\bAIOKafka(Producer|Consumer|AdminClient)\s*\(|\bbootstrap_servers\s*=")
FAUST_APP = re.compile(r"\bfaust\.App\(")


def test_only_hookstream_clients_builds_aiokafka_clients() -> None:
    assert len(SOURCES) > 50
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in SOURCES
        if path != ROOT / "hookstream" / "clients.py" and path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if CONSTRUCTION.search(line)
    ]
    assert offenders == [], "build Kafka clients with hookstream.clients: " + ", ".join(offenders)


def test_every_faust_app_gets_the_broker_credentials() -> None:
    apps = [(path, text) for path in SOURCES if FAUST_APP.search(text := path.read_text())]
    assert apps, "the worker's Faust app was not found"
    for path, text in apps:
        call = text[FAUST_APP.search(text).end() :].split("\n    )", 1)[0]  # type: ignore[union-attr]
        assert "broker_credentials=broker_credentials(settings)" in call, path


def acl_set(role: str, namespace: str = "hs") -> set[tuple[str, str, str, str, str]]:
    return {
        (a.permission.name, a.resource.name, a.pattern.name, a.name, a.operation.name)
        for a in role_acls(role, namespace)
    }


def test_receivers_may_only_write_the_raw_topics() -> None:
    assert acl_set("receivers") == {
        ("ALLOW", "TOPIC", "PREFIXED", "hs.raw.", "WRITE"),
        ("ALLOW", "TOPIC", "PREFIXED", "hs.raw.", "DESCRIBE"),
    }


def test_the_reader_reads_outputs_but_never_raw_or_internal_topics() -> None:
    reader = acl_set("reader")
    assert ("ALLOW", "TOPIC", "PREFIXED", "hs.", "READ") in reader
    assert {("DENY", "TOPIC", "PREFIXED", p, "READ") for p in ("hs.raw.", "hs.internal.")} <= reader
    assert ("ALLOW", "GROUP", "PREFIXED", "hs-reader", "READ") in reader
    assert not any(op in ("WRITE", "CREATE", "ALL") for *_, op in reader)


def test_the_worker_writes_outputs_but_never_raw_topics() -> None:
    worker = acl_set("worker")
    assert ("DENY", "TOPIC", "PREFIXED", "hs.raw.", "WRITE") in worker
    assert ("ALLOW", "TRANSACTIONAL_ID", "PREFIXED", "hs-dedup-", "WRITE") in worker
    assert {name for _, kind, _, name, _ in worker if kind == "GROUP"} == {"hs", "hs-dedup"}


def test_acls_are_printed_in_kafkas_terms() -> None:
    acl = Acl("User:reader", Permission.DENY, Resource.TOPIC, Pattern.PREFIXED, "hs.raw.", Operation.READ)
    assert table([acl]).splitlines() == [
        "PRINCIPAL\tPERMISSION\tRESOURCE_TYPE\tPATTERN_TYPE\tNAME\tOPERATION",
        "User:reader\tDENY\tTOPIC\tPREFIXED\ths.raw.\tREAD",
    ]
    with pytest.raises(HookstreamError, match="unknown role"):
        role_acls("everyone", "hs")


def test_the_acls_command_prints_one_roles_acls_for_the_namespace() -> None:
    printed = run_cli("acls", "--role", "poller", env={"HOOKSTREAM_NAMESPACE": "shop"})
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines()[1:] == [
        "User:poller\tALLOW\tTOPIC\tLITERAL\tshop.raw.hootsuite\tWRITE",
        *(
            f"User:poller\tALLOW\tTOPIC\tLITERAL\tshop.internal.hootsuite-poller\t{op}"
            for op in ("READ", "WRITE", "CREATE")
        ),
    ]


def test_a_client_certificates_principal_gets_the_roles_acls() -> None:
    printed = run_cli("acls", "--role", "receivers", "--principal", "User:CN=receivers,O=shop")
    assert printed.returncode == 0, printed.stderr
    assert {line.split("\t")[0] for line in printed.stdout.splitlines()[1:]} == {"User:CN=receivers,O=shop"}
    assert run_cli("acls", "--principal", "User:x").returncode == 2


def test_secure_properties_replace_the_plaintext_ones() -> None:
    plain = "listeners=PLAINTEXT://h:1\nlog.dirs=/data\n"
    assert override(plain, {"listeners": "SASL_SSL://h:1", "super.users": "User:admin"}) == (
        "log.dirs=/data\nlisteners=SASL_SSL://h:1\nsuper.users=User:admin\n"
    )


def test_the_secure_node_authenticates_every_listener_and_has_no_anonymous_super_user(tmp_path: Path) -> None:
    node = SecureNode(tmp_path, "localhost", 19092)
    properties = node.properties(controller_port=19093)
    assert "ANONYMOUS" not in properties["super.users"]
    protocols = dict(pair.split(":") for pair in properties["listener.security.protocol.map"].split(","))
    assert protocols == {"SASL_SSL": "SASL_SSL", "CONTROLLER": "SASL_PLAINTEXT", "SSL": "SSL"}
    assert properties["listener.name.ssl.ssl.client.auth"] == "required"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert {arg.split("name=")[1].split(",")[0] for arg in node.format_args()} == {
        "receivers",
        "worker",
        "poller",
        "reader",
        "admin",
    }
    assert oct((tmp_path / "secure" / "passwords.json").stat().st_mode & 0o777) == "0o600"


def test_the_nodes_of_a_secure_cluster_share_users_and_listen_on_their_own_ports(tmp_path: Path) -> None:
    first = SecureNode(tmp_path, "localhost", 21092, mtls=False)
    one, two = first.properties(25001), first.properties(25002, host="localhost", port=21093)
    assert one["listeners"] == "SASL_SSL://localhost:21092,CONTROLLER://localhost:25001"
    assert two["listeners"] == "SASL_SSL://localhost:21093,CONTROLLER://localhost:25002"
    assert two["advertised.listeners"] == "SASL_SSL://localhost:21093"
    assert "SSL:SSL" not in two["listener.security.protocol.map"], "no mutual-TLS listener in a cluster"
    for key in ("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", "ssl.keystore.location"):
        assert one[key] == two[key]
