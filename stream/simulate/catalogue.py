"""The simulated hub: organisations, repos, their libraries, files and popularity.

Owners are of very unequal size (a few publishers with thousands of repos, a long tail of
single-repo users, some legacy repos with no owner at all) and popularity is Zipf-like
within each repo type, so a few repos take most of the traffic, as on the real Hub.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from stream.simulate import files
from stream.simulate.files import Layout, LayoutFn


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of model repo: the library its metadata names and how its files look."""

    name: str
    library: str | None
    layout: LayoutFn
    weight: float
    families: tuple[str, ...]
    tags: tuple[str, ...] = ()


LLM = ("llama-3", "mistral", "qwen2.5", "gemma-2", "phi-3", "falcon", "olmo", "smollm")
ENCODERS = ("bert", "roberta", "deberta-v3", "distilbert", "xlm-roberta", "electra", "t5")
VISION = ("vit", "convnext", "resnet50", "efficientnet", "swin", "deit", "beit")

# Model library mix, led by transformers-style repos (with or without library_name).
MODEL_PROFILES: tuple[Profile, ...] = (
    Profile("transformers", "transformers", files.transformers, 33, LLM + ENCODERS,
            ("text-generation",)),
    Profile("no-library", None, files.transformers, 22, LLM + ENCODERS),
    Profile("sentence-transformers", "sentence-transformers", files.sentence_transformers, 7,
            ("all-MiniLM", "bge", "e5", "gte", "mpnet", "nomic-embed"),
            ("sentence-similarity",)),
    Profile("diffusers", "diffusers", files.diffusers, 6,
            ("stable-diffusion", "sdxl", "flux", "kandinsky", "animagine"), ("text-to-image",)),
    Profile("peft", "peft", files.peft, 8, tuple(f"{f}-lora" for f in LLM), ("lora",)),
    Profile("gguf", None, files.gguf, 7, tuple(f"{f}-GGUF" for f in LLM), ("gguf",)),
    Profile("timm", "timm", files.timm, 4, VISION, ("image-classification",)),
    Profile("open_clip", "open_clip", files.open_clip, 2, ("CLIP-ViT", "ViT-bigG", "convnext")),
    Profile("nemo", "nemo", files.nemo, 2, ("parakeet", "canary", "conformer", "fastpitch")),
    Profile("keras", "keras", files.keras, 2, ("keras-io", "gemma-keras", "unet-keras")),
    Profile("unknown", "my-lab-lib", files.custom, 3, ("custom-net", "toy-model", "agent")),
    Profile("spacy", "spacy", files.spacy, 1.5, ("en_core_web", "ner-pipeline")),
    Profile("speechbrain", "speechbrain", files.speechbrain, 1, ("ecapa", "spkrec")),
    Profile("stable-baselines3", "stable-baselines3", files.stable_baselines3, 1.5,
            ("ppo-LunarLander", "dqn-SpaceInvaders", "a2c-CartPole")),
)
DATASET_FAMILIES = ("squad", "wiki", "c4", "alpaca", "ultrachat", "imagenet", "commonvoice",
                    "openwebtext", "math-qa", "code-instruct", "reviews", "news")
SPACE_FAMILIES = ("chat-demo", "leaderboard", "tts-demo", "image-gen", "arena", "viewer")

PUBLISHERS = ("open-models", "bigcorp-ai", "quantfactory", "community-llm", "vision-lab",
              "speechworks")
ORG_HEADS = ("deep", "neural", "open", "sun", "blue", "quant", "byte", "tensor", "lang",
             "stellar", "astra", "nova", "kiwi", "lumen", "polar", "cedar")
ORG_TAILS = ("ai", "labs", "research", "ml", "nlp", "hub", "works", "mind", "tech")
USER_NAMES = ("alice", "bob", "carol", "dmitri", "emeka", "fatima", "guo", "hana", "ivan",
              "jose", "kenji", "lena", "mehdi", "nora", "omar", "priya", "quinn", "ravi")
MODEL_SUFFIXES = ("", "-instruct", "-chat", "-base", "-v2", "-finetuned", "-uncensored",
                  "-dpo", "-small", "-large", "-1.5B", "-7B", "-13B", "-70B")
OTHER_SUFFIXES = ("", "-v2", "-clean", "-en", "-filtered", "-2024", "-mini", "-demo")


@dataclass(frozen=True, slots=True)
class Repo:
    """One repo: type, ``org/name`` (or bare legacy name), profile, files, gating."""

    repo_type: str
    name: str
    profile: str
    library: str | None
    layout: Layout
    gated: bool
    commit: str

    @property
    def key(self) -> str:
        """The Kafka key and output key: ``model:org/name``."""
        return f"{self.repo_type}:{self.name}"


@dataclass(frozen=True, slots=True)
class Catalogue:
    """All repos per type, their cumulative popularity weights and the metadata log."""

    repos: dict[str, tuple[Repo, ...]] = field(hash=False)
    cum_weights: dict[str, tuple[float, ...]] = field(hash=False)
    metadata: tuple[tuple[str, dict[str, Any] | None], ...]
    owners: tuple[str, ...]

    def pick(self, rng: random.Random, repo_type: str) -> Repo:
        """A repo of ``repo_type`` drawn by popularity."""
        cum = self.cum_weights[repo_type]
        return self.repos[repo_type][bisect.bisect(cum, rng.random() * cum[-1])]

    def all_repos(self) -> list[Repo]:
        """Every repo, models then datasets then spaces."""
        return [r for t in ("model", "dataset", "space") for r in self.repos[t]]


def _owners(rng: random.Random, total: int) -> list[str | None]:
    """One owner slot per repo: big publishers, a Pareto tail of orgs/users, legacy None."""
    slots: list[str | None] = []
    for name, share in zip(PUBLISHERS, (0.06, 0.035, 0.02, 0.012, 0.008, 0.005), strict=True):
        slots += [name] * max(1, int(total * share))
    slots += [None] * max(1, int(total * 0.015))
    for n in itertools.count():
        if len(slots) >= total:
            break
        if rng.random() < 0.35:
            owner = f"{rng.choice(ORG_HEADS)}{rng.choice(ORG_TAILS)}-{n}"
        else:
            owner = f"{rng.choice(USER_NAMES)}{n}"
        # Pareto(1.1): about half the owners have one repo, a few have hundreds
        slots += [owner] * min(400, int(rng.paretovariate(1.1)))
    del slots[total:]
    rng.shuffle(slots)
    return slots


def _zipf_cum(n: int, exponent: float, rng: random.Random) -> tuple[float, ...]:
    """Cumulative Zipf weights over ``n`` repos in a random popularity order."""
    ranks = list(range(n))
    rng.shuffle(ranks)
    return tuple(itertools.accumulate(1.0 / (rank + 1) ** exponent for rank in ranks))


def _name(rng: random.Random, owner: str | None, family: str, taken: set[str],
          suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> str:
    base = f"{family}{rng.choice(suffixes)}"
    name = base if owner is None else f"{owner}/{base}"
    n = 2
    while name in taken:  # membership only: set order never reaches the output
        name = f"{base}-{n}" if owner is None else f"{owner}/{base}-{n}"
        n += 1
    taken.add(name)
    return name


def _model_metadata(rng: random.Random, repo: Repo, profile: Profile
                    ) -> list[dict[str, Any] | None]:
    """The metadata values a model repo emits over time (empty: no entry at all)."""
    if rng.random() < 0.06:
        return []
    tags = list(profile.tags)
    value: dict[str, Any] = {"tags": tags}
    if repo.library is not None:
        value = {"library_name": repo.library, "tags": tags}
    history: list[dict[str, Any] | None] = [value]
    roll = rng.random()
    if roll < 0.02:  # the owner fixed library_name after the first push
        history.insert(0, {"library_name": "transformers", "tags": []})
    elif roll < 0.03:
        history.append(None)  # repo deleted or made private: tombstone
    return history


def build_catalogue(rng: random.Random, models: int, datasets: int, spaces: int,
                    zipf_exponent: float = 1.05) -> Catalogue:
    """Build the whole catalogue from ``rng`` alone (deterministic per seed)."""
    total = models + datasets + spaces
    owners = _owners(rng, total)
    weights = [p.weight for p in MODEL_PROFILES]
    taken: set[str] = set()
    repos: dict[str, list[Repo]] = {"model": [], "dataset": [], "space": []}
    first: list[tuple[str, dict[str, Any] | None]] = []
    later: list[tuple[str, dict[str, Any] | None]] = []
    for i, owner in enumerate(owners):
        repo_type = "model" if i < models else "dataset" if i < models + datasets else "space"
        commit = f"{rng.getrandbits(160):040x}"
        if repo_type == "model":
            profile = rng.choices(MODEL_PROFILES, weights)[0]
            family = rng.choice(profile.families)
            name = _name(rng, owner, family, taken)
            stem = name.rsplit("/", 1)[-1]
            repo = Repo("model", name, profile.name, profile.library,
                        profile.layout(rng, stem), rng.random() < 0.03, commit)
            history = _model_metadata(rng, repo, profile)
        else:
            family = rng.choice(DATASET_FAMILIES if repo_type == "dataset" else SPACE_FAMILIES)
            name = _name(rng, owner, family, taken, OTHER_SUFFIXES)
            layout = (files.dataset if repo_type == "dataset" else files.space)(rng, name)
            repo = Repo(repo_type, name, repo_type, None, layout,
                        repo_type == "dataset" and rng.random() < 0.02, commit)
            history = []
            if rng.random() < 0.4:
                tag = "size_categories:10K<n<100K" if repo_type == "dataset" else "gradio"
                history = [{"tags": [tag]}]
        repos[repo_type].append(repo)
        if history:
            first.append((repo.key, history[0]))
            later += [(repo.key, value) for value in history[1:]]
    cum = {t: _zipf_cum(len(rs), zipf_exponent, rng) for t, rs in repos.items() if rs}
    return Catalogue({t: tuple(rs) for t, rs in repos.items()}, cum, tuple(first + later),
                     tuple(dict.fromkeys(o for o in owners if o is not None)))
