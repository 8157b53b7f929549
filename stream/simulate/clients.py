"""Who downloads, and the request sequences their clients really send.

A behaviour turns (repo, client) into a list of :data:`Request` tuples: seconds after the
session start, method, path, status, bytes. The sequences follow the real clients:
``from_pretrained`` HEADs then GETs each file it loads (probing ``adapter_config.json``,
which 404s on plain models), ``snapshot_download`` fetches everything, llama.cpp pulls one
GGUF file, ``datasets`` walks parquet shards for minutes, interrupted downloads resume with
206, gated repos answer 401, renamed repos 307, LFS files 302, warm caches 304.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from stream.simulate.catalogue import Repo

Request = tuple[float, str, str, int, int]  # offset s, method, path, status, bytes

FROM_PRETRAINED = "from_pretrained"
SNAPSHOT = "snapshot_download"
GGUF_SINGLE = "gguf_single_file"
DIFFUSERS_PIPELINE = "diffusers_pipeline"
GIT_CLONE = "git_clone"
RESUMED = "resumed_download"
GATED_DENIED = "gated_denied"
MISSING_FILE = "missing_file"
REDIRECT = "redirect"
DATASET_LOAD = "dataset_load"
BROWSER = "browser"
CURL = "curl"
CI_RUNNER = "ci_runner"
SPACE_VISIT = "space_visit"
RETURNING = "returning_user"
CRAWLER = "crawler"
MIRROR = "mirror"

HUB_VERSIONS = ("0.23.4", "0.24.6", "0.25.2", "0.26.5", "0.27.1", "0.30.2")
PY_VERSIONS = ("3.9.19", "3.10.14", "3.11.10", "3.12.7")
LIB_VERSIONS = {"transformers": ("4.44.2", "4.46.3", "4.48.0", "4.52.4"),
                "diffusers": ("0.30.3", "0.31.0", "0.32.2"),
                "sentence_transformers": ("3.0.1", "3.3.1"),
                "datasets": ("2.21.0", "3.1.0", "3.2.0"),
                "peft": ("0.12.0", "0.14.0"), "timm": ("1.0.9", "1.0.12"),
                "open_clip": ("2.26.1", "2.29.0")}
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
TOOLS = ("curl/8.5.0", "curl/7.81.0", "Wget/1.21.4", "python-requests/2.32.3",
         "aria2/1.37.0", "hf_transfer/0.1.8")
GIT = ("git/2.43.0", "git-lfs/3.5.1 (GitHub; linux amd64; go 1.21.8)",
       "git-lfs/3.4.1 (GitHub; darwin arm64; go 1.21.5)")
GGUF_CLIENTS = ("llama-cpp", "LM Studio/0.3.5", "ollama/0.4.7", "koboldcpp/1.79")
CRAWLERS = ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com)")
MIRRORS = ("aria2/1.37.0", "hfd/0.2 (hf-mirror)", "rclone/v1.68.2")
COUNTRIES = (("US", "California"), ("US", "Virginia"), ("CN", "Beijing"), ("DE", "Hesse"),
             ("FR", "Ile-de-France"), ("IN", "Karnataka"), ("JP", "Tokyo"), ("GB", "England"),
             ("KR", "Seoul"), ("BR", "Sao Paulo"), ("CA", "Ontario"), ("SG", "Singapore"),
             ("NL", "North Holland"), ("VN", "Hanoi"), ("NG", "Lagos"))
COUNTRY_WEIGHTS = (18, 10, 12, 6, 5, 9, 5, 5, 4, 3, 3, 4, 3, 2, 2)
NO_COUNTRY_SHARE = 0.02  # of clients whose requests the CDN could not place (no country field)
# CI runners: the markers CI systems leave in huggingface_hub's user agent (HF_HUB_USER_AGENT
# or the library's own CI detection), and the cloud regions their machines run in.
CI_MARKERS = ("github-actions", "github-actions", "github-actions", "gitlab", "jenkins", "circleci",
              "buildkite", "true")
CI_REGIONS = (("US", "Virginia"), ("US", "Oregon"), ("US", "Iowa"), ("IE", "Dublin"), ("DE", "Hesse"))


@dataclass(frozen=True, slots=True)
class Client:
    """A person or machine: ids as the log export hashes them, place, Python stack."""

    user_id: str | None
    ip: str | None
    country: str | None  # None: the CDN logged no place
    region: str | None
    hub: str  # "huggingface_hub/x; python/y"
    versions: tuple[int, ...]  # which version of each library this client pins


def make_clients(rng: random.Random, n: int, ci: bool = False) -> tuple[Client, ...]:
    """``n`` clients; CI runners are anonymous (hashed IP only), in cloud regions, and say
    which CI system runs them (``ci/<system>``)."""
    out = []
    for _ in range(n):
        roll = rng.random()
        user = None if ci or roll >= 0.45 else f"{rng.getrandbits(128):032x}"
        anonymous = roll >= 0.97 and not ci  # neither id logged (a CI runner always has its IP)
        ip = None if user is not None or anonymous else f"{rng.getrandbits(128):032x}"
        place: tuple[str | None, str | None] = (
            rng.choice(CI_REGIONS) if ci else rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0])
        hub = f"huggingface_hub/{rng.choice(HUB_VERSIONS)}; python/{rng.choice(PY_VERSIONS)}"
        if ci:
            hub += f"; ci/{rng.choice(CI_MARKERS)}"
        versions = tuple(rng.randrange(8) for _ in range(8))
        if not ci and rng.random() < NO_COUNTRY_SHARE:
            place = (None, None)
        out.append(Client(user, ip, *place, hub, versions))
    return tuple(out)


def hub_agent(client: Client, library: str | None) -> str:
    """The user agent huggingface_hub sends for ``library`` (torch always there)."""
    ua = f"{client.hub}; torch/2.{3 + client.versions[0] % 3}.1"
    lib = {"sentence-transformers": "sentence_transformers", None: "transformers",
           "datasets": "datasets"}.get(library, library)
    if lib in LIB_VERSIONS:
        versions = LIB_VERSIONS[lib]
        ua += f"; {lib}/{versions[client.versions[1] % len(versions)]}"
    return ua


def _fetch(rng: random.Random, repo: Repo, paths: tuple[str, ...] | list[str], *,
           head: bool = True, t: float = 0.0) -> list[Request]:
    """HEAD (metadata, 302 for big LFS files) then GET each path, back to back."""
    sizes = repo.layout.sizes
    out: list[Request] = []
    for path in paths:
        size = sizes.get(path, 0)
        if head:
            out.append((t, "HEAD", path, 302 if size > 10_000_000 else 200, 0))
            t += rng.uniform(0.02, 0.3)
        out.append((t, "GET", path, 200, size))
        t += 0.05 + size / rng.uniform(30e6, 300e6)  # transfer time at the client's bandwidth
    return out


def from_pretrained(rng: random.Random, repo: Repo) -> list[Request]:
    """Load config, weights and tokenizer; transformers probes adapter_config.json first."""
    load = repo.layout.load
    out = _fetch(rng, repo, load[:1])
    if repo.profile in ("transformers", "no-library", "sentence-transformers"):
        t = out[-1][0] + 0.1
        out.append((t, "HEAD", "adapter_config.json", 404, 0))
    return out + _fetch(rng, repo, load[1:], t=out[-1][0] + 0.2)


def snapshot(rng: random.Random, repo: Repo) -> list[Request]:
    """snapshot_download: hf_hub_download of every file of the repo."""
    return _fetch(rng, repo, repo.layout.files)


def git_clone(rng: random.Random, repo: Repo) -> list[Request]:
    """git clone + git lfs pull: a GET on every file, no HEADs."""
    return _fetch(rng, repo, repo.layout.files, head=False)


def gguf_single(rng: random.Random, repo: Repo) -> list[Request]:
    """llama.cpp / LM Studio fetch one quantisation (sometimes after a HEAD)."""
    ggufs = [f for f in repo.layout.files if f.endswith(".gguf")] or [repo.layout.primary]
    pick = repo.layout.primary if rng.random() < 0.6 else rng.choice(ggufs)
    return _fetch(rng, repo, [pick], head=rng.random() < 0.5)


def resumed(rng: random.Random, repo: Repo) -> list[Request]:
    """A big download cut off and resumed with Range requests (206)."""
    path = repo.layout.primary
    size = repo.layout.sizes.get(path, 1)
    got = int(size * rng.uniform(0.1, 0.6))
    out: list[Request] = [(0.0, "GET", path, 200, got)]
    t = rng.uniform(30, 600)
    for _ in range(rng.randint(1, 3)):
        part = (size - got) if rng.random() < 0.5 else int((size - got) * rng.uniform(0.3, 0.9))
        out.append((t, "GET", path, 206, part))
        got += part
        t += rng.uniform(30, 600)
        if got >= size:
            break
    return out


def gated(rng: random.Random, repo: Repo) -> list[Request]:
    """A client without access to a gated repo: 401 on each attempt."""
    path = repo.layout.load[0]
    return [(i * rng.uniform(1, 20), m, path, 401, 0)
            for i, m in enumerate(("HEAD", "GET", "HEAD")[: rng.randint(1, 3)])]


def missing(rng: random.Random, repo: Repo) -> list[Request]:
    """Files that are not there (404), then usually the file that is."""
    ghosts = {"dataset": ("dataset_infos.json", "data/train.parquet"),
              "space": ("requirements-dev.txt",)}.get(
        repo.repo_type, ("pytorch_model.bin", "tokenizer.model", "model.safetensors"))
    ghost = next((g for g in ghosts if g not in repo.layout.sizes), "does-not-exist.txt")
    out: list[Request] = [(0.0, "HEAD", ghost, 404, 0), (0.1, "GET", ghost, 404, 15)]
    if rng.random() < 0.7:
        out += _fetch(rng, repo, repo.layout.load[:1], t=0.5)
    return out


def redirect(rng: random.Random, repo: Repo) -> list[Request]:
    """A renamed repo (307 to the new name) or an LFS file (302 to the CDN)."""
    path = repo.layout.primary
    status = 307 if rng.random() < 0.5 else 302
    return [(0.0, "GET", path, status, 0),
            (0.2, "GET", path, 200, repo.layout.sizes.get(path, 0))]


def dataset_load(rng: random.Random, repo: Repo) -> list[Request]:
    """datasets.load_dataset: README then every shard, one after the other, for minutes."""
    out: list[Request] = [(0.0, "HEAD", "README.md", 200, 0),
                          (0.2, "GET", "README.md", 200, repo.layout.sizes["README.md"])]
    t = 1.0
    for path in repo.layout.load:
        out.append((t, "GET", path, 200, repo.layout.sizes[path]))
        t += rng.uniform(2, 40)  # shard download + arrow conversion
    return out


def browser(rng: random.Random, repo: Repo) -> list[Request]:
    """Someone clicks a file on the website (a cached one answers 304)."""
    path = rng.choice(repo.layout.files)
    status = 304 if rng.random() < 0.15 else 200
    return [(0.0, "GET", path, status, 0 if status == 304 else repo.layout.sizes[path])]


def tool(rng: random.Random, repo: Repo) -> list[Request]:
    """curl/wget on the main file; LFS files answer 302 to a plain GET."""
    path = repo.layout.primary
    size = repo.layout.sizes.get(path, 0)
    return [(0.0, "GET", path, 302 if size > 10_000_000 and rng.random() < 0.3 else 200, size)]


def crawler(rng: random.Random, repo: Repo) -> list[Request]:
    """A search engine or an AI crawler reads the README and a file or two."""
    extra = rng.sample(repo.layout.files, min(len(repo.layout.files), rng.randint(1, 2)))
    paths = ["README.md", *(f for f in extra if f != "README.md")] if "README.md" in repo.layout.sizes else extra
    return _fetch(rng, repo, paths, head=False)


def mirror(rng: random.Random, repo: Repo) -> list[Request]:
    """A mirroring tool copies every file of the repo, a few at a time."""
    return _fetch(rng, repo, repo.layout.files, head=rng.random() < 0.5)


def space_visit(rng: random.Random, repo: Repo) -> list[Request]:
    """The Space's app files, fetched by its builder or a visitor."""
    return _fetch(rng, repo, repo.layout.load, head=False)


def warm_reload(rng: random.Random, repo: Repo) -> list[Request]:
    """A client coming back with a warm cache: HEADs, and 304 on conditional GETs."""
    out: list[Request] = []
    for i, path in enumerate(repo.layout.load):
        if rng.random() < 0.7:
            out.append((i * 0.1, "HEAD", path, 200, 0))
        else:
            out.append((i * 0.1, "GET", path, 304, 0))
    return out


Behaviour = Callable[[random.Random, Repo], list[Request]]


@dataclass(frozen=True, slots=True)
class Mix:
    """Behaviours and their weights for one kind of repo."""

    names: tuple[str, ...]
    weights: tuple[float, ...]


def _mix(**weights: float) -> Mix:
    return Mix(tuple(weights), tuple(weights.values()))


# The loader behaviour per model profile; the rest of the mix is shared.
LOADER = {"diffusers": DIFFUSERS_PIPELINE, "gguf": GGUF_SINGLE}
MODEL_MIX = {FROM_PRETRAINED: 40, SNAPSHOT: 10, GIT_CLONE: 3, RESUMED: 3, MISSING_FILE: 4,
             REDIRECT: 3, BROWSER: 8, CURL: 6, CI_RUNNER: 8, CRAWLER: 3, MIRROR: 2}
MIXES = {
    "model": _mix(**MODEL_MIX),
    "diffusers": _mix(**{DIFFUSERS_PIPELINE if k == FROM_PRETRAINED else k: v
                         for k, v in MODEL_MIX.items()}),
    "gguf": _mix(**{GGUF_SINGLE: 55, SNAPSHOT: 5, CURL: 10, RESUMED: 8, BROWSER: 8,
                    GIT_CLONE: 2, REDIRECT: 2, MISSING_FILE: 2, CRAWLER: 2, MIRROR: 2}),
    "dataset": _mix(**{DATASET_LOAD: 55, SNAPSHOT: 10, GIT_CLONE: 4, BROWSER: 10, CURL: 6,
                       MISSING_FILE: 4, REDIRECT: 2, RESUMED: 2, CI_RUNNER: 5, CRAWLER: 3, MIRROR: 2}),
    "space": _mix(**{SPACE_VISIT: 70, GIT_CLONE: 10, BROWSER: 15, MISSING_FILE: 5, CRAWLER: 5}),
}
GATED_SHARE = 0.3  # of sessions on a gated repo, those by clients without access

BEHAVIOURS: dict[str, Behaviour] = {
    FROM_PRETRAINED: from_pretrained, DIFFUSERS_PIPELINE: from_pretrained,
    SNAPSHOT: snapshot, GGUF_SINGLE: gguf_single, GIT_CLONE: git_clone, RESUMED: resumed,
    GATED_DENIED: gated, MISSING_FILE: missing, REDIRECT: redirect,
    DATASET_LOAD: dataset_load, BROWSER: browser, CURL: tool, CI_RUNNER: from_pretrained,
    SPACE_VISIT: space_visit, RETURNING: warm_reload, CRAWLER: crawler, MIRROR: mirror,
}
ALL_BEHAVIOURS = tuple(BEHAVIOURS)


def mix_for(repo: Repo) -> Mix:
    """The behaviour mix of sessions on ``repo``."""
    if repo.repo_type != "model":
        return MIXES[repo.repo_type]
    return MIXES.get(repo.profile, MIXES["model"])


def agent_for(rng: random.Random, behaviour: str, repo: Repo, client: Client) -> str:
    """The user agent a session of ``behaviour`` sends."""
    if behaviour in (BROWSER, SPACE_VISIT):
        return rng.choice(BROWSERS)
    if behaviour in (CURL, RESUMED):
        return rng.choice(TOOLS)
    if behaviour == GIT_CLONE:
        return rng.choice(GIT)
    if behaviour == GGUF_SINGLE:
        return rng.choice(GGUF_CLIENTS)
    if behaviour == CRAWLER:
        return rng.choice(CRAWLERS)
    if behaviour == MIRROR:
        return rng.choice(MIRRORS)
    library = "datasets" if repo.repo_type == "dataset" else repo.library
    return hub_agent(client, library)
