"""Request bodies: the same JSON as json.dumps, each image's data URL serialised once, not on every turn."""

from __future__ import annotations

import json

from PIL import Image

from matbench.models.base import ChatRequest
from matbench.models.body import body_cache_stats, clear_body_cache, encode_json_body
from matbench.models.openai_api import build_body


def _image(path, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_body_bytes_equal_json_dumps(tmp_path):
    img = _image(tmp_path / "a.png", 0)
    tricky = 'quote " backslash \\ NUL \x00 é 中文 \u2028 "\\u0000matbench-image:0\\u0000"'
    req = ChatRequest(text=tricky, images=[img, img], temperature=0.0)
    body = build_body("m", req, reasoning=False)
    expected = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert encode_json_body(body) == expected
    assert json.loads(encode_json_body(body)) == body
    text_only = build_body("m", ChatRequest(text=tricky), reasoning=False)
    assert (
        encode_json_body(text_only)
        == json.dumps(text_only, ensure_ascii=False, separators=(",", ":")).encode()
    )


def test_an_image_is_serialised_once_across_turns(tmp_path):
    clear_body_cache()
    before = body_cache_stats()
    a, b = _image(tmp_path / "a.png", 1), _image(tmp_path / "b.png", 2)
    for turn in range(5):  # five turns of one episode: the same image, a growing text
        encode_json_body(build_body("m", ChatRequest(text="t" * turn, images=[a]), reasoning=False))
    stats = body_cache_stats()
    assert stats["misses"] - before["misses"] == 1 and stats["hits"] - before["hits"] == 4
    encode_json_body(build_body("m", ChatRequest(text="x", images=[b]), reasoning=False))
    assert (
        body_cache_stats()["misses"] - before["misses"] == 2
    )  # a new image (e.g. a code step's output) is serialised once


def test_responses_bodies_splice_their_images_too(tmp_path):
    """POST /responses carries images as ``input_image`` parts whose ``image_url`` is the URL string itself."""
    from matbench.models.base import Message
    from matbench.models.openai_responses import build_responses_body

    clear_body_cache()
    img = _image(tmp_path / "a.png", 3)
    tricky = 'quote " NUL \x00 "\\u0000matbench-image:0\\u0000"'
    before = body_cache_stats()
    for turn in range(4):  # a native tool conversation growing by one tool result per turn
        messages = [Message(role="user", text=tricky, images=[img])]
        messages += [Message(role="user", text=f"result {i}", images=[img]) for i in range(turn)]
        body = build_responses_body("o3", ChatRequest(text="", messages=messages), reasoning=True)
        assert encode_json_body(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    stats = body_cache_stats()
    assert stats["misses"] - before["misses"] == 1  # one image, serialised once over 1 + 2 + 3 + 4 uses
    assert stats["hits"] - before["hits"] == 9
