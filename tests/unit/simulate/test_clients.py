"""Request sequences of the client behaviours and the file layouts they walk."""

from __future__ import annotations

import random

import pytest

from stream.rules import load_registry
from stream.simulate import clients, files
from stream.simulate.catalogue import Repo
from stream.simulate.files import Layout

pytestmark = pytest.mark.unit


def _repo(layout: Layout, profile: str = "transformers", repo_type: str = "model") -> Repo:
    return Repo(repo_type, "org/name", profile, profile, layout, False, "0" * 40)


def _layout(fn: files.LayoutFn, seed: int = 0, stem: str = "Model") -> Layout:
    return fn(random.Random(seed), stem)


def test_sharded_transformers_layout_has_index_and_shards() -> None:
    for seed in range(200):
        layout = _layout(files.transformers, seed)
        shards = [f for f in layout.files if f.startswith("model-0")]
        if len(shards) > 1:
            n = len(shards)
            assert f"model-00001-of-{n:05d}.safetensors" in layout.files
            assert "model.safetensors.index.json" in layout.files
            assert layout.load[0] == "config.json"
            assert "model.safetensors.index.json" in layout.load
            return
    pytest.fail("no sharded repo in 200 seeds")


@pytest.mark.parametrize(("fn", "must"), [
    (files.peft, {"adapter_config.json"}),
    (files.open_clip, {"open_clip_model.safetensors", "open_clip_config.json"}),
    (files.nemo, {"Model.nemo"}),
    (files.timm, {"model.safetensors", "config.json"}),
    (files.sentence_transformers, {"modules.json", "1_Pooling/config.json"}),
])
def test_library_layouts(fn: files.LayoutFn, must: set[str]) -> None:
    layout = _layout(fn)
    assert must <= set(layout.files)
    assert {"README.md", ".gitattributes"} <= set(layout.files)
    assert set(layout.load) <= set(layout.files)
    assert layout.primary in layout.files
    assert all(layout.sizes[f] > 0 for f in layout.files)


def test_diffusers_and_gguf_layouts() -> None:
    pipelines = [_layout(files.diffusers, s) for s in range(20)]
    full = [p for p in pipelines if "model_index.json" in p.files]
    assert full and all("unet/diffusion_pytorch_model.safetensors" in p.files for p in full)
    assert all("vae/config.json" in p.files and "scheduler/scheduler_config.json" in p.files
               for p in full)
    gguf = _layout(files.gguf, 1, "Llama-3-8B")
    quants = [f for f in gguf.files if f.endswith(".gguf")]
    assert len(quants) >= 3
    assert gguf.primary == "Llama-3-8B-Q4_K_M.gguf"


def test_dataset_layout_has_parquet_shards() -> None:
    layouts = [_layout(files.dataset, s) for s in range(50)]
    shards = [f for lay in layouts for f in lay.files if f.endswith(".parquet")]
    assert any(f.startswith("data/train-00000-of-") for f in shards)
    assert max(len(lay.load) for lay in layouts) >= 12  # some loads touch dozens of shards


def test_from_pretrained_heads_then_gets_and_probes_adapter() -> None:
    layout = Layout(("config.json", "model.safetensors", "README.md"),
                    {"config.json": 1000, "model.safetensors": 500_000_000, "README.md": 10},
                    ("config.json", "model.safetensors"), "model.safetensors")
    reqs = clients.from_pretrained(random.Random(0), _repo(layout))
    seq = [(m, p, s) for _, m, p, s, _ in reqs]
    assert seq == [("HEAD", "config.json", 200), ("GET", "config.json", 200),
                   ("HEAD", "adapter_config.json", 404),
                   ("HEAD", "model.safetensors", 302), ("GET", "model.safetensors", 200)]
    offsets = [r[0] for r in reqs]
    assert offsets == sorted(offsets)


def test_resumed_gated_redirect_warm_and_dataset_sequences() -> None:
    rng = random.Random(4)
    model = _repo(_layout(files.transformers, 3))
    assert [r[3] for r in clients.resumed(rng, model)][:2] == [200, 206]
    assert {r[3] for r in clients.gated(rng, model)} == {401}
    assert clients.redirect(rng, model)[0][3] in (302, 307)
    warm = clients.warm_reload(rng, model)
    assert all((m, s) in (("HEAD", 200), ("GET", 304)) for _, m, _, s, _ in warm)
    assert clients.missing(rng, model)[0][3] == 404
    ds = _repo(_layout(files.dataset, 8), "dataset", "dataset")
    load = clients.dataset_load(rng, ds)
    assert [r[2] for r in load[2:]] == list(ds.layout.load)
    assert all(r[1] == "GET" and r[3] == 200 for r in load[2:])


def test_user_agents_match_the_client() -> None:
    rng = random.Random(0)
    (client,) = clients.make_clients(rng, 1)
    repo = _repo(_layout(files.transformers))
    assert clients.agent_for(rng, clients.FROM_PRETRAINED, repo, client).startswith(
        "huggingface_hub/")
    assert "transformers/" in clients.agent_for(rng, clients.FROM_PRETRAINED, repo, client)
    assert clients.agent_for(rng, clients.GIT_CLONE, repo, client).startswith("git")
    assert clients.agent_for(rng, clients.BROWSER, repo, client).startswith("Mozilla/5.0")
    (ci,) = clients.make_clients(rng, 1, ci=True)
    assert ci.user_id is None and ci.ip is not None and "ci/" in ci.hub


def test_ci_runners_name_several_ci_systems() -> None:
    # The classes file must meet every kind of CI marker, not one: each runner names its system.
    runners = clients.make_clients(random.Random(1), 300, ci=True)
    markers = {c.hub.rpartition("; ci/")[2] for c in runners}
    assert set(clients.CI_MARKERS) == markers
    assert all(c.ip is not None and c.country is not None for c in runners)


def test_some_clients_have_no_country() -> None:
    people = clients.make_clients(random.Random(2), 5_000)
    unplaced = sum(c.country is None for c in people)
    assert 0.01 * len(people) < unplaced < 0.04 * len(people)
    assert all(c.region is None for c in people if c.country is None)


@pytest.mark.parametrize(("fn", "library"), [(files.timm, "timm"), (files.open_clip, "open_clip"),
                                             (files.keras, "keras")])
def test_some_repos_have_weights_their_rule_misses(fn: files.LayoutFn, library: str) -> None:
    # "Why are my downloads 0?": a share of these repos name their files so that the
    # library's rule counts none of what a loader fetches.
    registry = load_registry()
    layouts = [_layout(fn, seed) for seed in range(200)]
    missed = [lay for lay in layouts if not any(registry.counts(library, p) for p in lay.load)]
    assert 0.05 * len(layouts) < len(missed) < 0.35 * len(layouts)
    for lay in missed:
        assert set(lay.load) <= set(lay.files) and lay.primary in lay.sizes
