"""The worker against a three-master Redis Cluster, on the same workload as ``worker``.

Measured exactly like :mod:`bench.worker_e2e` (same window, same verification), with
``REDIS_URL`` naming one node of a local cluster (three masters, no replicas, no
persistence: :class:`stream.devstack.redis_cluster.LocalCluster`) instead of the single
redis-server. The two take turns within each round, so their ratio is what the cluster
costs the worker: its client splits each batch's pipeline per node and sends the three
at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench import worker_e2e

if TYPE_CHECKING:
    from bench.workload import Workload


def run_once(workload: Workload, run_id: str) -> dict[str, Any]:
    """One end-to-end run on the cluster with a fresh consumer group."""
    settings = workload.settings_for(f"bench-cluster-{run_id}", redis_url=workload.cluster_url())
    return worker_e2e.measure(workload, settings, f"cluster-{run_id}", workload.expected)
