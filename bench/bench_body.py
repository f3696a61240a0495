"""Event-loop time to build the request body of a coding episode: the same ~1.3 MB image on every turn.

Five turns of one MAT-Coding-sized request (a 1.3 MB PNG, a growing text). "whole body" is what the SDK's
``json.dumps`` of the request dict costs each call (the old path); "spliced" is ``encode_json_body``, which
serialises the image's data URL once per image and splices it into the rest (the base64 data URL itself was
already cached per image before). Best of 20 runs, for Chat Completions bodies and for Responses API bodies
(o3, GPT-4o with ``--api responses``), whose ``input_image`` parts hold the URL string.

Run: python bench/bench_body.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's matbench


def main() -> None:
    import numpy as np
    from openai._utils._json import openapi_dumps
    from PIL import Image

    from matbench.models.base import ChatRequest
    from matbench.models.body import clear_body_cache, encode_json_body
    from matbench.models.openai_api import build_body
    from matbench.models.openai_responses import build_responses_body

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "img.png"
        buf = io.BytesIO()
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (640, 680, 3), dtype=np.uint8)).save(buf, format="PNG")
        path.write_bytes(buf.getvalue())
        size = path.stat().st_size / 1e6
        requests = [ChatRequest(text="x " * (400 * (t + 1)), images=[path]) for t in range(5)]
        shapes = {
            "chat": [build_body("m", r, reasoning=False) for r in requests],
            "responses": [build_responses_body("o3", r, reasoning=True) for r in requests],
        }
        timings: dict[tuple[str, str], tuple[float, float]] = {}
        for shape, bodies in shapes.items():
            for name, encode in (("whole body", openapi_dumps), ("spliced", encode_json_body)):
                first = later = float("inf")
                for _ in range(20):
                    clear_body_cache()
                    t0 = time.perf_counter()
                    encode(bodies[0])
                    t1 = time.perf_counter()
                    for b in bodies[1:]:
                        out = encode(b)
                    first = min(first, t1 - t0)
                    later = min(later, (time.perf_counter() - t1) / (len(bodies) - 1))
                timings[shape, name] = (first * 1000, later * 1000)
                assert len(out) > 1_000_000
    print(f"request body of a {size:.2f} MB image over 5 turns, ms of event-loop time per call (best of 20):")
    for shape in shapes:
        for name in ("whole body", "spliced"):
            first, later = timings[shape, name]
            print(f"  {shape:<9} {name:<11} first turn {first:6.2f} ms, each later turn {later:6.2f} ms")
        ratio = timings[shape, "whole body"][1] / timings[shape, "spliced"][1]
        print(f"  {shape:<9} later turns reuse the image's serialised form: {ratio:.0f}x less per call")


if __name__ == "__main__":
    main()
