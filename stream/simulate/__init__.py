"""The traffic simulator: a deterministic model of what a hub's CDN logs.

``Simulation`` builds a catalogue of repos and clients from a seed and yields log events;
``sinks`` writes them to NDJSON files or Kafka; ``commands.simulate`` is the CLI.
"""

from stream.simulate.sinks import produce_metadata, produce_to_kafka, write_metadata, write_ndjson
from stream.simulate.traffic import SimRecord, Simulation

__all__ = ["SimRecord", "Simulation", "produce_metadata", "produce_to_kafka", "write_metadata", "write_ndjson"]
