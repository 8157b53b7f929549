"""Nothing lost when a Redis Cluster master goes back in time: a failover to a replica that
had not received the writes its master acknowledged, or a master restored from an older
snapshot. The worker finds that master's shards behind and counts again."""

from __future__ import annotations

import signal
import time

import pytest

from stream.devstack.redis_cluster import LocalCluster
from tests.integration.test_durability import counted_again_after
from tests.support import save_snapshot

pytestmark = pytest.mark.integration


def test_a_failover_to_a_replica_that_lagged_is_counted_again(cluster_settings, workdir, redis_cluster: LocalCluster):
    # The replica of one master is frozen (SIGSTOP) and its link cut (else the kernel
    # would keep buffering the stream for it): the master goes on acknowledging batches
    # its replica never receives. The master is then SIGKILLed and the replica, thawed,
    # takes over with the older data. The worker's next batches find that master's shards
    # behind the others and count again from their markers.
    master = redis_cluster.masters()[0]
    replica = redis_cluster.replica_of(master)

    def failover() -> None:
        redis_cluster.node_of(replica.port).signal(signal.SIGSTOP)
        redis_cluster.cli("client", "kill", "type", "replica", port=master.port)
        time.sleep(3)  # acknowledged by the master, never replicated
        redis_cluster.node_of(master.port).kill()
        redis_cluster.node_of(replica.port).signal(signal.SIGCONT)
        redis_cluster.wait_master(replica.port)
        redis_cluster.node_of(master.port).start()  # rejoins as a replica of the new master

    counted_again_after(cluster_settings, workdir, 61, failover, "a failover to a lagging replica")


def test_a_master_restored_from_an_older_snapshot_is_counted_again(cluster_settings, workdir,
                                                                   redis_cluster: LocalCluster):
    # BGSAVE one master mid-stream; counting goes on; then the master and its replica
    # are killed and the master restored from that snapshot (a backup restore of one
    # node). Its shards hold less than the others: the worker counts them again.
    master = redis_cluster.masters()[0]
    replica = redis_cluster.replica_of(master)

    def restore() -> None:
        older = save_snapshot(master.port, redis_cluster.node_of(master.port).log_path.parent)
        time.sleep(3)
        redis_cluster.node_of(replica.port).kill()  # else it would take over, with the newer data
        redis_cluster.restore(master.port, older)
        redis_cluster.node_of(replica.port).start()  # resyncs from the restored master

    counted_again_after(cluster_settings, workdir, 62, restore, "a master restored from a snapshot")
