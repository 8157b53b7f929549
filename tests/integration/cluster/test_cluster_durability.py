"""Nothing lost when a Redis Cluster fails over to a replica that had not received the
writes its master acknowledged: the worker finds the new master behind and counts again."""

from __future__ import annotations

import signal
import time

import pytest

from stream.devstack.redis_cluster import LocalCluster
from tests.integration.test_durability import wait_counting
from tests.integration.test_health import _metric
from tests.integration.test_worker_exact import assert_exact, simulated
from tests.support import Feeder, start_worker, wait_committed

pytestmark = pytest.mark.integration


def test_a_failover_to_a_replica_that_lagged_is_counted_again(cluster_settings, workdir, redis_cluster: LocalCluster):
    # The replica of one master is frozen (SIGSTOP) and its link cut (else the kernel
    # would keep buffering the stream for it): the master goes on acknowledging batches
    # its replica never receives. The master is then SIGKILLed and the replica, thawed,
    # takes over with the older data. The worker's next batches find that master's shards
    # behind the others and count again from their markers.
    master = redis_cluster.masters()[0]
    replica = redis_cluster.replica_of(master)
    records, expected = simulated(cluster_settings, 80_000, seed=61)
    worker = start_worker(cluster_settings, workdir)
    feeder = Feeder(cluster_settings, records, rate=6_000).start()
    try:
        wait_counting(cluster_settings)
        redis_cluster.node_of(replica.port).signal(signal.SIGSTOP)
        redis_cluster.cli("client", "kill", "type", "replica", port=master.port)
        time.sleep(3)  # acknowledged by the master, never replicated
        redis_cluster.node_of(master.port).kill()
        redis_cluster.node_of(replica.port).signal(signal.SIGCONT)
        redis_cluster.wait_master(replica.port)
        redis_cluster.node_of(master.port).start()  # rejoins as a replica of the new master
        wait_committed(cluster_settings, feeder.join())
        assert worker.running, "the worker must ride out the failover"
        assert _metric(cluster_settings, "hubcounter_redis_behind_total") > 0, "the new master should be behind"
    finally:
        worker.stop()
    assert_exact(cluster_settings, expected)
