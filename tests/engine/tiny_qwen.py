"""Build a tiny random Qwen2.5-VL checkpoint offline, deterministically: same inputs, same bytes.

Real vLLM and transformers code paths (ChatML template with vision tokens, Qwen2-VL image processor,
mrope, window attention in the vision tower) on a 1.6 M-parameter model that builds in seconds on a
CPU. Its weights are random: it writes nonsense, so tests check plumbing, formats, determinism and
agreement with transformers, never quality.

    python tests/engine/tiny_qwen.py OUT_DIR --text FILE [--text FILE ...]

Needs torch, transformers and tokenizers (the engine venv). ``build_cached`` keeps one copy per
input hash (recipe + texts + library versions) and checks the output's sha256 on reuse.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

RECIPE_VERSION = 1
VOCAB_SIZE = 4000  # BPE vocabulary before the special tokens
SPECIAL_TOKENS = (  # Qwen2.5-VL's, in Qwen's order; they take the ids right after the BPE vocabulary
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
MAX_PIXELS = 256 * 28 * 28
MIN_PIXELS = 4 * 28 * 28
SEED = 1234

# ChatML as Qwen2-VL writes it: a default system turn, images/videos as vision-start/pad/end tokens
# in the order they appear in the user's content, the assistant header when a generation is asked for.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]  # the CLIP statistics Qwen2-VL's processor uses
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(directory: Path) -> str:
    """One digest over every file's relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode() + b"\0" + _sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def input_hash(texts: list[Path]) -> str:
    """What the build depends on: this file, the training texts, the library versions."""
    import tokenizers
    import torch
    import transformers

    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    for t in texts:
        h.update(_sha256_file(t).encode())
    h.update(f"{torch.__version__}|{transformers.__version__}|{tokenizers.__version__}".encode())
    return h.hexdigest()[:16]


def _training_lines(texts: list[Path]) -> list[str]:
    """Plain text from .jsonl corpora (``contents``/``question``/``text`` fields) or .json/.txt files."""
    lines: list[str] = []
    for path in texts:
        raw = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            for line in raw.splitlines():
                if line.strip():
                    row = json.loads(line)
                    lines.extend(str(row[k]) for k in ("contents", "question", "text") if k in row)
        elif path.suffix == ".json":
            data = json.loads(raw)
            rows = data if isinstance(data, list) else [data]
            lines.extend(str(r.get("question", "")) for r in rows if isinstance(r, dict))
        else:
            lines.extend(raw.splitlines())
    return [s for s in lines if s]


def build_tokenizer(texts: list[Path], out: Path) -> dict[str, int]:
    """A byte-level BPE with Qwen's special tokens; returns the special tokens' ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_training_lines(texts), trainer=trainer)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(out)
    return ids


def write_processor_configs(out: Path) -> None:
    common = {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": IMAGE_MEAN,
        "image_std": IMAGE_STD,
        "merge_size": 2,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        "rescale_factor": 1 / 255,
        "resample": 3,
        "processor_class": "Qwen2_5_VLProcessor",
    }
    (out / "preprocessor_config.json").write_text(
        json.dumps({**common, "image_processor_type": "Qwen2VLImageProcessor"}, indent=2, sort_keys=True)
    )
    (out / "video_preprocessor_config.json").write_text(
        json.dumps({**common, "video_processor_type": "Qwen2VLVideoProcessor"}, indent=2, sort_keys=True)
    )
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2))


def build_model(out: Path, ids: dict[str, int]) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    vocab = VOCAB_SIZE + len(SPECIAL_TOKENS)
    eos, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 32768,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [8, 12, 12],
            },
            "bos_token_id": pad,
            "eos_token_id": eos,
            "pad_token_id": pad,
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 2,
            "out_hidden_size": 128,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config.torch_dtype = torch.float32
    torch.manual_seed(SEED)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=pad,
        eos_token_id=[eos, pad],
        pad_token_id=pad,
        do_sample=True,
        temperature=0.1,
        top_p=0.001,
        top_k=1,
    )
    model.save_pretrained(out)


def build(out: Path, texts: list[Path]) -> str:
    """Build into ``out`` (created) and return its tree sha256."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out.mkdir(parents=True, exist_ok=True)
    ids = build_tokenizer(texts, out)
    write_processor_configs(out)
    build_model(out, ids)
    return tree_sha256(out)


def build_cached(cache_root: Path, texts: list[Path]) -> tuple[Path, str]:
    """``cache_root/<input hash>``: built once, reused after checking its recorded sha256."""
    key = input_hash(texts)
    final = cache_root / key
    stamp = cache_root / f"{key}.sha256"
    if final.is_dir() and stamp.is_file():
        digest = tree_sha256(final)
        if digest == stamp.read_text().strip():
            return final, digest
        shutil.rmtree(final)  # tampered or half-written: build again
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
    try:
        digest = build(tmp / "model", texts)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / "model", final)
        stamp.write_text(digest + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final, digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a tiny random Qwen2.5-VL checkpoint offline.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--text", type=Path, action="append", required=True, help="training text for the BPE")
    args = parser.parse_args(argv)
    print(build(args.out, args.text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
