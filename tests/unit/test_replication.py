"""Replication without a broker: the topics' placement by cluster size, the local cluster's layout and
properties, and the readiness rule (can an acks=all write succeed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.structs import PartitionMetadata

from hookstream.kafka import TopicSpec
from hookstream.localcluster import CONTROLLER_PORTS, local_cluster, server_properties
from hookstream.settings import Settings
from hookstream.writable import write_blocker


@pytest.mark.parametrize(
    ("configured", "brokers", "replicas", "min_isr"),
    [
        (None, 1, 1, "1"),
        (None, 2, 1, "1"),
        (None, 3, 3, "2"),
        (None, 5, 3, "2"),
        (2, 3, 2, "1"),
        (1, 3, 1, "1"),
    ],
)
def test_topics_get_three_replicas_two_in_sync_on_three_brokers_unless_configured(
    configured: int | None, brokers: int, replicas: int, min_isr: str
) -> None:
    spec = TopicSpec("t", partitions=6, replication_factor=configured, config={"retention.ms": "1"})
    topic = spec.placed(brokers)
    assert (topic.num_partitions, topic.replication_factor) == (6, replicas)
    assert topic.topic_configs == {"min.insync.replicas": min_isr, "retention.ms": "1"}


def test_one_address_is_the_single_development_broker_as_before(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="localhost:9092", cache_dir=tmp_path)
    cluster = local_cluster(settings)
    (node,) = cluster.nodes
    assert (node.home, node.controller_port, cluster.cluster_id) == (tmp_path / "broker-9092", 9093, None)
    properties = server_properties(node, cluster)
    assert properties["controller.quorum.bootstrap.servers"] == "localhost:9093"
    assert "controller.quorum.voters" not in properties
    assert properties["transaction.state.log.replication.factor"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"


def test_three_addresses_are_three_nodes_with_controller_ports_below_the_ephemeral_range(
    tmp_path: Path,
) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:21092,127.0.0.1:21093,127.0.0.1:21094", cache_dir=tmp_path)
    cluster = local_cluster(settings)
    cluster.save()
    assert [node.node_id for node in cluster.nodes] == [1, 2, 3]
    assert len({node.controller_port for node in cluster.nodes}) == 3
    assert all(node.controller_port in CONTROLLER_PORTS for node in cluster.nodes)
    assert len({node.home for node in cluster.nodes}) == 3
    again = local_cluster(settings)
    assert again == cluster, "the ports and the cluster id are kept for every later start"
    properties = server_properties(cluster.nodes[1], cluster)
    assert properties["node.id"] == "2"
    assert properties["controller.quorum.voters"] == ",".join(
        f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes
    )
    assert (
        properties["listeners"]
        == f"PLAINTEXT://127.0.0.1:21093,CONTROLLER://127.0.0.1:{cluster.nodes[1].controller_port}"
    )
    assert (properties["offsets.topic.replication.factor"], properties["transaction.state.log.min.isr"]) == (
        "3",
        "2",
    )
    assert (properties["default.replication.factor"], properties["min.insync.replicas"]) == ("3", "2")


def _partition(leader: int, isr: list[int], partition: int = 0) -> PartitionMetadata:
    return PartitionMetadata("raw", partition, leader, [1, 2, 3], isr, 0)


@pytest.mark.parametrize(
    ("partitions", "reachable", "blocker"),
    [
        ([_partition(1, [1, 2, 3])], {1, 2, 3}, None),
        ([_partition(1, [1, 2])], {1, 2}, None),
        ([_partition(1, [1, 2, 3])], {1, 3}, None),
        ([_partition(-1, [2])], {1, 2, 3}, "raw/0 has no leader"),
        (
            [_partition(1, [1, 2, 3]), _partition(2, [2, 3], 1)],
            {1, 3},
            "raw/1: its leader, broker 2, is unreachable",
        ),
        # the controller quorum is lost: metadata still lists every replica in sync, two are away
        ([_partition(3, [1, 2, 3])], {3}, "raw/0: 1 in-sync replica(s) reachable, min.insync.replicas is 2"),
        ([_partition(1, [1])], {1, 2, 3}, "raw/0: 1 in-sync replica(s) reachable, min.insync.replicas is 2"),
    ],
)
def test_a_write_can_succeed_when_the_leader_and_min_insync_replicas_are_reachable(
    partitions: list[PartitionMetadata], reachable: set[int], blocker: str | None
) -> None:
    assert write_blocker(partitions, reachable, {"raw": 2}) == blocker
