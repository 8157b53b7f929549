"""Embedded services for the demo, the tests and the benchmarks.

Every service runs as a child process on free loopback ports, dies with its parent
(:mod:`stream.devstack.process`), and is stopped in order when its ``with`` block ends.
"""

from stream.devstack.kafka import KafkaCluster, KafkaSecurity, kafka_cluster
from stream.devstack.process import ManagedProcess, free_port, spawn, wait_for_port
from stream.devstack.services import (
    redis_binary,
    redis_process,
    tansu_binary,
    tansu_process,
    wait_ready,
    worker_process,
)
from stream.devstack.stack import Stack, embedded_stack, env_overrides

__all__ = [
    "KafkaCluster", "KafkaSecurity", "ManagedProcess", "Stack", "embedded_stack", "env_overrides", "free_port",
    "kafka_cluster", "redis_binary", "redis_process", "spawn", "tansu_binary", "tansu_process", "wait_for_port",
    "wait_ready", "worker_process",
]
