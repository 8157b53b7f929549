"""How each figure is measured: the text ``docs/BENCHMARKS.md`` ends with."""

METHOD = """
## How to run

```
make bench                                          # the full run on Apache Kafka (installs the bench extra first)
.venv/bin/python -m bench all --json kafka.json     # the full run on Apache Kafka, keeping the figures
.venv/bin/python -m bench all --broker tansu --json tansu.json   # the same on Tansu
.venv/bin/python -m bench render kafka.json tansu.json --out docs/BENCHMARKS.md   # this page, both runs
.venv/bin/python -m bench all --quick               # sizes for a smoke run, one round
.venv/bin/python -m bench all --only worker drain --runs 5
.venv/bin/python -m bench all --skip api            # leave a benchmark out
.venv/bin/python -m bench.profile_worker            # where the worker's time goes (cProfile)
```

`--json FILE` keeps every raw figure; `--keep` keeps the scratch directory with the log of
every process (broker, Redis, each worker and baseline).

## Method

**One workload, made once.** `python -m bench` starts the broker (`--broker kafka`: one
Apache Kafka KRaft node from `make kafka`, 448 MiB heap, full JIT; `--broker tansu`: Tansu,
memory storage) and a redis-server (no persistence) on free ports, creates an 8-partition events topic and the
compacted metadata topic, simulates three days of hub traffic with `stream.simulate`
(fixed seed; 1% of records malformed or outside the lateness window, minus the few whose
timestamp lies within an hour of a window edge, which the moving clock could flip during
the run) and produces it once, in per-partition batches whose offsets are recorded. The
expected counts come from `stream.reference.compute` over the same records. Every
contender reads that topic from the beginning with a consumer group of its own; Redis is
flushed before each contender's run. Waits are on what was produced (the offset of the
last record sent to each partition, or the number of records), never on the broker's
end offsets, which Tansu reports low.

**Rounds.** The throughput figures come from rounds: each round runs the two raw drains, the
worker, the worker on a cluster, the two Faust baselines and the Quix baseline once, one
after the other, so drift in the machine's load spreads over all of them. Best and median
are over the rounds; the ratios divide medians by the lean raw drain's median. Each run also reports the CPU time of the
contender's own process over its window, and the one-minute load average when it began.

**Windows.** Group joins and start-up are outside every window. Batch consumers (the
drain, the worker) are timed from their first batch to their last, over the records after
the first batch: that batch's fetch time is not in the window, so its records are not
either. Per-event consumers (Faust, Quix) are timed from the first event their code sees
to the end of the Redis write of the last one.

- *Raw drains*: a child process assigns itself every partition (no group) and drains the
  topic with `getmany(max_records=20000)` and the worker's fetch sizes; no decoding, no
  Redis. A run is three passes; its figure is the median pass. The *lean* drain reads as
  the worker's consumer does (`stream.records`, `read_committed`, CRC checks as
  `HUBCOUNTER_CHECK_CRCS`, off by default): the ceiling the worker's rate is compared with.
  The *stock* drain is aiokafka as it comes (`ConsumerRecord`s, CRC checks on).
- *Worker*: the real `hubcounter worker` process (`stream.devstack.worker_process`),
  default batch size (20,000) and shards (64). The start is the first applied batch, seen
  by polling four shards' position markers (`hc:{N}:pos`) every 5 ms (which also says how many
  records that batch held); the end is the `last_apply_ms` the worker publishes in
  `hc:worker:<id>` once its `events_read` covers the topic. The worker's own figure,
  `events_read / (last_apply_ms - first_read_ms)`, is kept in the JSON as
  `rate_own_fields` (it counts the first batch without its fetch, so it reads a little
  higher). Then every counter in Redis is read back and compared with the reference.
- *Cluster*: the same worker run with `REDIS_URL` naming one node of a local Redis
  Cluster of three masters (`stream.devstack.redis_cluster`, no persistence and, unlike
  production, no replicas: on this machine a replica's CPU would be taken from the
  worker's own two cores). It takes its turn right after the single-Redis worker in each
  round, so the ratio of the two medians is what the cluster costs the worker (goal: at
  most 15%).
- *Faust, per event*: `faust.App` with one agent on the topic (raw bytes), iterating
  `stream.events()`; per event `stream.events.parse_event` + `stream.counting.Counter`
  decide, and a counted event is written at once: an `SADD` to its 5-minute dedupe set for
  a dataset request with a user, then one pipelined round trip of `HINCRBY` (day, all) and
  `ZINCRBY` (day, all-time leaderboards), i.e. the worker's writes minus the 30-day window
  and key expiries. At-least-once; verified on a run without failures.
- *Faust, batched*: the same app with an agent on `stream.take_events(5000, within=0.2)`:
  each batch is judged event by event as above, then written with one pipeline of `SADD`s
  (when it holds dataset candidates) and one pipeline of the increments summed per (repo,
  day). Both Faust agents count the whole workload, like every other contender.
- *Quix Streams*: `Application` (default checkpointing: 5 s), `StreamingDataFrame` on the
  topic with the bytes deserializer, `.apply` of the same decision (each event decoded
  once, by `parse_event`), `.filter` on it, and a `BatchingSink` that applies each checkpoint:
  `SADD`s for the dataset candidates, then one pipeline of the same `HINCRBY`/`ZINCRBY`
  per (repo, day). When the last record is processed the app is stopped, which flushes the
  sink at a final checkpoint; that write ends the window.
- Every consumer uses a 3 s session timeout with heartbeats every 750 ms: Tansu holds a
  new group's join for half the session timeout (23 s at librdkafka's default), outside
  the windows but not the wall clock. Apache Kafka joins at once
  (`group.initial.rebalance.delay.ms=0` on the benchmark's broker).

**Latency.** A fresh topic and a fresh worker; a feeder process produces simulated live
traffic (`Simulation(live_rate=...)`, generated ahead, sent in 10 ms steps) at 50% of the
worker's best end-to-end rate from the rounds (the page reports the rate achieved). After a
warm-up probe has been counted and one second of load, the driver sends a probe every 20 ms:
an anonymous dataset request for `bench-probe/latency`, which always counts and, being one
key, stays in one partition
and is applied in order. It stamps each probe just before handing it to the producer
(`linger_ms=0`) and polls that repo's all-time counter every 2 ms; when the counter
reaches n, probes 1..n are visible. Latency = visible time - send time, on one clock.

**Memory.** (1) A worker whose metadata topic holds 1,000,000 synthetic model repos, each
naming a library (so each is kept in the map), then the workload's own metadata; it loads
the topic, counts the workload (verified exact) and its RSS is read after readiness and
after counting, with the peak (`VmHWM`). (2) The real `CounterStore.apply` applies
tallies holding 1,000,000 distinct (dataset, user, 5-minute bucket) entries (3,000
datasets, the last day's 288 buckets) in batches of 20,000 to a redis-server of its own:
`used_memory` before and after (this includes the datasets' counters) and the
`MEMORY USAGE` of the dedupe sets alone. (3) `tracemalloc` around loading 1,000,000
metadata records into a `stream.metadata.LibraryMap`. Memory does not depend on timing,
so (2) and (3) run while (1) does, and the latency rig starts up meanwhile. Where (1)'s
memory goes: `python -m bench.memory_profile` runs the same worker in-process under
`tracemalloc` (started at readiness, a snapshot every half second) and reports the
snapshot holding the most by allocating line, what holds the fetched records' lists,
and what a full collection frees at that moment (garbage only the cyclic collector sees).

**Rollback** (`bench/rollback.py`). The real worker counts the workload into a
redis-server of its own; at a third of the topic `BGSAVE` keeps a snapshot; once Redis
holds a third more (or everything), it is killed and started again from that snapshot
while the worker runs. Reported: what the snapshot holds (read from the file itself), what
Redis held before the kill, the positions the worker counted again
(`hubcounter_replayed_positions_total`), the time until the whole topic is held again, and
the usual check of every counter against the reference.

**Redis** (`bench/redis_bench.py`, no broker). *Apply*: realistic batches (20,000
simulated events through the worker's `Counter`, 8 partitions each) applied by
`CounterStore.apply` to one redis-server, a one-master and a three-master cluster (no
replicas, no persistence), after a warm-up pass; per batch the time `apply` takes, the
client's CPU, Redis's own CPU (`INFO cpu`, summed over masters) and the bytes sent
(`total_net_input_bytes`); then the same ranges with no downloads, what moving every
shard's position markers costs alone. *Sizing*: repos x 30 days of downloads applied
through the same writer (200,000 repos by default, `--sizing-repos N` for others; 20,000
in quick mode), then the same repos over one day; `used_memory` before and after each,
and `MEMORY USAGE` of every leaderboard and day zset and of samples of repo hashes and
org index sets. The difference between the two
fills gives the bytes one repo-day adds; the one-day fill less that, the bytes per repo.

**Rules**, **event parser**, **API** and **API fuzzing**: `bench.rules_bench.run()`,
`bench.parse_bench.run()`, `bench.api_bench.run()` (when present) and `bench.fuzz_api.run()`,
reported as they return.

**Caveats.** Everything shares two cores: the broker, Redis, the contender and the driver.
Other jobs on the machine show in the load-average column; figures taken under load are
provisional.
"""
