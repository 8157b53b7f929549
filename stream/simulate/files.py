"""Realistic file layouts of hub repositories, one builder per library.

A :class:`Layout` lists a repo's files with their sizes, the files a library loader
fetches in order (``load``) and the one file a person would fetch by hand (``primary``).
The layouts follow what the Hub really hosts, so the download rules meet the paths they
were written for: sharded safetensors with an index, diffusers component folders, GGUF
quantisations, peft adapters, parquet shards.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

GB = 1_000_000_000
MB = 1_000_000
KB = 1_000

SMALL_FILES = {"README.md": 6 * KB, ".gitattributes": 1_519}
TOKENIZER_SETS = (
    ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"),
    ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"),
    ("tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"),
    ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"),
)
GGUF_QUANTS = ("Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "IQ4_XS", "f16")
# Repos whose weights carry a name their library's download rule does not know (the Hub's
# most reported "why are my downloads 0?"): a share of timm, OpenCLIP and Keras repos.
MISNAMED_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Layout:
    """The files of one repo: all of them, what a loader fetches, and the main file."""

    files: tuple[str, ...]
    sizes: dict[str, int] = field(compare=False, hash=False)
    load: tuple[str, ...]
    primary: str

    def renamed(self, names: dict[str, str]) -> Layout:
        """The same layout with some files under other names (``old -> new``)."""
        def new(path: str) -> str:
            return names.get(path, path)
        return Layout(tuple(map(new, self.files)), {new(p): n for p, n in self.sizes.items()},
                      tuple(map(new, self.load)), new(self.primary))


def _sometimes_misnamed(rng: random.Random, layout: Layout, names: dict[str, str]) -> Layout:
    """``layout``, or in :data:`MISNAMED_SHARE` of repos its weights renamed by ``names``.

    Drawn after the layout, so the layouts of the other repos do not depend on it.
    """
    return layout.renamed(names) if rng.random() < MISNAMED_SHARE else layout


class _Builder:
    """Collects files in insertion order (a dict keeps the order deterministic)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.files: dict[str, int] = {}

    def add(self, path: str, size: int) -> str:
        # a little noise so equal files of different repos differ in size
        self.files[path] = max(1, int(size * self.rng.uniform(0.8, 1.2)))
        return path

    def common(self) -> None:
        for path, size in SMALL_FILES.items():
            self.add(path, size)

    def done(self, load: list[str], primary: str) -> Layout:
        self.common()
        return Layout(tuple(self.files), dict(self.files), tuple(load), primary)


def _weights(b: _Builder, stem: str, ext: str, total: int) -> list[str]:
    """Weights in one file or in shards of about 5 GB with an index, as the Hub shards."""
    shards = max(1, round(total / (4.9 * GB)))
    if shards == 1:
        return [b.add(f"{stem}.{ext}", total)]
    index = b.add(f"{stem}.{ext}.index.json", 30 * KB + 20 * shards)
    names = [
        b.add(f"{stem}-{i:05d}-of-{shards:05d}.{ext}", total // shards)
        for i in range(1, shards + 1)
    ]
    return [index, *names]


def _model_size(rng: random.Random) -> int:
    # most repos are small fine-tunes; a minority are multi-shard LLMs
    return rng.choices(
        (120 * MB, 440 * MB, 1_300 * MB, 3 * GB, 15 * GB, 28 * GB, 140 * GB),
        (25, 25, 15, 12, 12, 8, 3),
    )[0]


def _tokenizer(b: _Builder) -> list[str]:
    return [b.add(name, 2 * MB if name == "tokenizer.json" else 4 * KB)
            for name in b.rng.choice(TOKENIZER_SETS)]


def transformers(rng: random.Random, stem: str) -> Layout:
    """config.json, (sharded) safetensors, sometimes legacy .bin, tokenizer files."""
    b = _Builder(rng)
    load = [b.add("config.json", 1_200)]
    total = _model_size(rng)
    kind = rng.random()
    if kind < 0.12:
        weights = _weights(b, "pytorch_model", "bin", total)  # pre-safetensors repo
    else:
        weights = _weights(b, "model", "safetensors", total)
        if kind < 0.3:
            _weights(b, "pytorch_model", "bin", total)
    load += weights
    if total >= 3 * GB or rng.random() < 0.3:
        load.append(b.add("generation_config.json", 180))
    load += _tokenizer(b)
    if rng.random() < 0.05:
        b.add("onnx/model.onnx", total)
    if rng.random() < 0.04:
        b.add("tf_model.h5", total)
    return b.done(load, weights[-1])


def sentence_transformers(rng: random.Random, stem: str) -> Layout:
    """modules.json, sentence-bert configs, the transformer, the pooling module."""
    b = _Builder(rng)
    load = [b.add(p, 400) for p in ("modules.json", "config_sentence_transformers.json")]
    load.append(b.add("sentence_bert_config.json", 60))
    load.append(b.add("config.json", 700))
    weights = b.add("model.safetensors", rng.choice((90 * MB, 440 * MB, 1_300 * MB)))
    load.append(weights)
    if rng.random() < 0.3:
        b.add("pytorch_model.bin", b.files[weights])
    load += _tokenizer(b)
    load.append(b.add("1_Pooling/config.json", 300))
    if rng.random() < 0.4:
        b.add("onnx/model.onnx", b.files[weights])
    return b.done(load, weights)


def diffusers(rng: random.Random, stem: str) -> Layout:
    """A pipeline (model_index.json + component folders) or a LoRA / single-file repo."""
    b = _Builder(rng)
    if rng.random() < 0.3:
        lora = b.add("pytorch_lora_weights.safetensors", 170 * MB)
        return b.done([lora], lora)
    load = [b.add("model_index.json", 600), b.add("scheduler/scheduler_config.json", 500)]
    encoders = ("text_encoder", "text_encoder_2") if rng.random() < 0.4 else ("text_encoder",)
    for enc in encoders:
        load += [b.add(f"{enc}/config.json", 600), b.add(f"{enc}/model.safetensors", 490 * MB)]
        tok = enc.replace("text_encoder", "tokenizer")
        load += [b.add(f"{tok}/{n}", 1 * MB) for n in ("vocab.json", "merges.txt")]
        load += [b.add(f"{tok}/tokenizer_config.json", 800)]
    load += [b.add("unet/config.json", 1_800),
             b.add("unet/diffusion_pytorch_model.safetensors", 3_400 * MB)]
    if rng.random() < 0.5:
        b.add("unet/diffusion_pytorch_model.fp16.safetensors", 1_700 * MB)
    load += [b.add("vae/config.json", 700),
             b.add("vae/diffusion_pytorch_model.safetensors", 330 * MB)]
    primary = "unet/diffusion_pytorch_model.safetensors"
    if rng.random() < 0.35:
        primary = b.add(f"{stem}.safetensors", 6_900 * MB)  # the single-file checkpoint
    return b.done(load, primary)


def timm(rng: random.Random, stem: str) -> Layout:
    """config.json plus model.safetensors, often pytorch_model.bin beside it."""
    b = _Builder(rng)
    size = rng.choice((20 * MB, 100 * MB, 350 * MB))
    load = [b.add("config.json", 900), b.add("model.safetensors", size)]
    if rng.random() < 0.5:
        b.add("pytorch_model.bin", size)
    # a checkpoint saved with torch.save under timm's training-script name
    return _sometimes_misnamed(rng, b.done(load, load[-1]), {"model.safetensors": "model.pth",
                                                              "pytorch_model.bin": "checkpoint.pth.tar"})


def open_clip(rng: random.Random, stem: str) -> Layout:
    """open_clip_config.json and the open_clip weights, sometimes an HF-format copy."""
    b = _Builder(rng)
    size = rng.choice((600 * MB, 1_700 * MB, 3_900 * MB))
    load = [b.add("open_clip_config.json", 1_000), b.add("open_clip_model.safetensors", size)]
    if rng.random() < 0.6:
        b.add("open_clip_pytorch_model.bin", size)
    if rng.random() < 0.3:
        b.add("config.json", 4_000)
        b.add("model.safetensors", size)
    # weights uploaded as the training run wrote them
    return _sometimes_misnamed(rng, b.done(load, load[-1]), {"open_clip_model.safetensors": "epoch_32.pt",
                                                              "open_clip_pytorch_model.bin": "open_clip_model.pt"})


def peft(rng: random.Random, stem: str) -> Layout:
    """adapter_config.json + adapter_model.safetensors (or the older .bin)."""
    b = _Builder(rng)
    ext = "bin" if rng.random() < 0.15 else "safetensors"
    load = [b.add("adapter_config.json", 700), b.add(f"adapter_model.{ext}", 50 * MB)]
    if rng.random() < 0.4:
        load += _tokenizer(b)
    if rng.random() < 0.5:
        b.add("training_args.bin", 5 * KB)
    return b.done(load, load[1])


def gguf(rng: random.Random, stem: str) -> Layout:
    """Several quantisations of one model; the largest ones split in parts."""
    b = _Builder(rng)
    base = rng.choice((2 * GB, 8 * GB, 14 * GB, 70 * GB))
    quants = sorted(rng.sample(range(len(GGUF_QUANTS)), rng.randint(3, len(GGUF_QUANTS))))
    if 3 not in quants:
        quants = sorted([*quants, 3])  # nearly every GGUF repo ships Q4_K_M
    files = []
    for q in quants:
        size = int(base * (0.3 + 0.08 * q))
        name = f"{stem}-{GGUF_QUANTS[q]}"
        if size > 48 * GB:
            parts = -(-size // (40 * GB))
            files += [b.add(f"{name}-{i:05d}-of-{parts:05d}.gguf", size // parts)
                      for i in range(1, parts + 1)]
        else:
            files.append(b.add(f"{name}.gguf", size))
    if rng.random() < 0.2:
        b.add("config.json", 700)
    primary = next(f for f in files if "Q4_K_M" in f)
    return b.done([primary], primary)


def nemo(rng: random.Random, stem: str) -> Layout:
    """A single .nemo archive."""
    b = _Builder(rng)
    archive = b.add(f"{stem}.nemo", rng.choice((120 * MB, 600 * MB, 2_400 * MB)))
    return b.done([archive], archive)


def keras(rng: random.Random, stem: str) -> Layout:
    """Keras 3 saving format, or a single .keras archive."""
    b = _Builder(rng)
    if rng.random() < 0.4:
        archive = b.add("model.keras", 90 * MB)
        return b.done([archive], archive)
    load = [b.add("config.json", 2_000), b.add("metadata.json", 150),
            b.add("model.weights.h5", 90 * MB)]
    # a TensorFlow SavedModel pushed by an older push_to_hub_keras: no config.json
    return _sometimes_misnamed(rng, b.done(load, load[-1]), {"config.json": "keras_metadata.pb",
                                                              "metadata.json": "fingerprint.pb",
                                                              "model.weights.h5": "saved_model.pb"})


def custom(rng: random.Random, stem: str) -> Layout:
    """A repo of a library the Hub does not know: its own config and checkpoint names."""
    b = _Builder(rng)
    conf = b.add(rng.choice(("config.yaml", "params.json", "hparams.yaml")), 900)
    ckpt = b.add(rng.choice(("model.pt", "weights.ckpt", "checkpoint.pth", "model.bin")),
                 400 * MB)
    return b.done([conf, ckpt], ckpt)


def spacy(rng: random.Random, stem: str) -> Layout:
    """A spaCy pipeline packaged as a wheel."""
    b = _Builder(rng)
    wheel = b.add(f"{stem.replace('-', '_')}-any-py3-none-any.whl", 40 * MB)
    b.add("meta.json", 3 * KB)
    b.add("config.cfg", 5 * KB)
    return b.done([wheel], wheel)


def speechbrain(rng: random.Random, stem: str) -> Layout:
    """hyperparams.yaml and the checkpoints it names."""
    b = _Builder(rng)
    load = [b.add("hyperparams.yaml", 4 * KB), b.add("embedding_model.ckpt", 80 * MB)]
    return b.done(load, load[-1])


def stable_baselines3(rng: random.Random, stem: str) -> Layout:
    """A zipped agent with a replay video."""
    b = _Builder(rng)
    agent = b.add(f"{stem}.zip", 2 * MB)
    b.add("config.json", 2 * KB)
    b.add("replay.mp4", 1 * MB)
    return b.done([agent], agent)


def dataset(rng: random.Random, stem: str) -> Layout:
    """Parquet shards per split (the converted layout), or older jsonl/csv files."""
    b = _Builder(rng)
    kind = rng.random()
    if kind < 0.12:
        ext = "jsonl" if kind < 0.08 else "csv"
        load = [b.add(f"{split}.{ext}", 80 * MB) for split in ("train", "test")]
        return b.done(load, load[0])
    train = min(64, max(1, int(rng.paretovariate(0.9))))
    splits = [("train", train)]
    if rng.random() < 0.7:
        splits += [("test", max(1, train // 8)), ("validation", max(1, train // 8))]
    prefix = "data" if rng.random() < 0.85 else rng.choice(("default", "en", "main"))
    load = [
        b.add(f"{prefix}/{split}-{i:05d}-of-{n:05d}.parquet", 300 * MB)
        for split, n in splits
        for i in range(n)
    ]
    return b.done(load, load[0])


def space(rng: random.Random, stem: str) -> Layout:
    """A gradio/streamlit app."""
    b = _Builder(rng)
    load = [b.add("app.py", 6 * KB), b.add("requirements.txt", 200)]
    for i in range(rng.randint(0, 4)):
        b.add(f"examples/example_{i}.jpg", 300 * KB)
    return b.done(load, load[0])


LayoutFn = Callable[[random.Random, str], Layout]
