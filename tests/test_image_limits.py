"""Output images: a pixel limit in the sandbox, and image encoding kept off the event loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer, decode_request_images
from PIL import Image

from matbench.models import ChatRequest, get_model, openai_api
from matbench.tools.sandbox import MAX_OUTPUT_PIXELS, Sandbox

# A 13000x13000 TIFF compresses to well under a megabyte; decoding or re-encoding it costs seconds and GB.
HUGE_TIFF = """
from PIL import Image
Image.new('L', (13000, 13000)).save('path_to_output_image.jpg', format='TIFF', compression='tiff_deflate')
"""


@pytest.fixture(scope="module")
def image(fixtures_dir) -> Path:
    return fixtures_dir / "mat" / "coding-demo" / "rotation180_1_proc.png"


@pytest.mark.parametrize("isolation", ["auto", "none"])
def test_output_above_the_pixel_limit_is_refused(image, isolation):
    with Sandbox(timeout=20.0, workers=1, isolation=isolation) as box:
        box.warmup()
        started = time.perf_counter()
        res = box.run(HUGE_TIFF, image)
        refused_in = time.perf_counter() - started - (res.exec_time or 0.0)
        assert not res.ok and res.output_image is None
        assert res.error == (
            f"the output image is 13000x13000 (169.0 MP), above the limit of {MAX_OUTPUT_PIXELS} pixels "
            "(the vision processor's max_pixels): write a smaller image"
        )
        assert "13000x13000" in res.feedback()
        assert not (res.workdir / "output.jpg").exists()
        assert box.max_output_pixels == MAX_OUTPUT_PIXELS
        print(f"\n[{res.isolation}] 13000x13000 TIFF refused {refused_in * 1000:.0f} ms after the code ended")
        ok = box.run(
            "import shutil\nshutil.copy('path_to_input_image.jpg', 'path_to_output_image.jpg')", image
        )
        assert ok.ok, ok.error


def test_the_pixel_limit_is_a_setting(image):
    code = "import cv2\ncv2.imwrite('path_to_output_image.jpg', cv2.imread('path_to_input_image.jpg'))\n"
    with Sandbox(timeout=10.0, workers=1, max_output_pixels=1500 * 1500) as box:
        assert box.run(code, image).ok  # the fixture is exactly 1500x1500
    with Sandbox(timeout=10.0, workers=1, max_output_pixels=1500 * 1500 - 1) as box:
        res = box.run(code, image)
    assert not res.ok and res.error.startswith("the output image is 1500x1500 (2.2 MP), above the limit")


def test_images_are_encoded_off_the_event_loop(tmp_path, monkeypatch):
    """A TIFF must be re-encoded to PNG for the API; that work runs in a thread, never on the loop."""
    path = tmp_path / "big.tif"
    arr = np.random.default_rng(0).integers(0, 255, size=(600, 800, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="TIFF")
    on_loop: list[bool] = []
    real = openai_api.image_data_url

    def spy(p):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(p)

    monkeypatch.setattr(openai_api, "image_data_url", spy)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAIServer("ok") as srv:
        model = get_model("openai:fake-model", base_url=srv.base_url)

        async def go():
            try:
                return await model.generate([ChatRequest("Describe.", images=[path])])
            finally:
                await model.aclose()

        [out] = asyncio.run(go())
    assert out.error is None
    assert on_loop == [False]
    assert np.array_equal(decode_request_images(srv.requests[0])[0], arr)
