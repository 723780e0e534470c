"""The real island build (widget-island/build.mjs), run into a temporary directory.

The bundle is served as immutable, so its name must change whenever its content does, the
previous build's files must go, and the precompressed siblings must hold the same bytes.
Needs widget-island/node_modules (`make island`, which `make test` runs first); each build
takes a few seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sample_app.components.chat_ai_widget import ISLAND_NAME, island_build
from sample_app.config import PROJECT_ROOT

BUILD_SCRIPT = PROJECT_ROOT / "widget-island" / "build.mjs"
NODE = Path(sys.executable).with_name("node")  # Node >= 22 from the virtualenv, as make uses
STALE_NAMES = ("chat-ai-widget-island.js", "chat-ai-widget-island.js.LEGAL.txt")


def build(out_dir: Path, banner: str) -> dict[str, Any]:
    """Run the build with a banner (which changes the content); return its manifest."""
    subprocess.run(  # noqa: S603 - our own script
        [str(NODE), str(BUILD_SCRIPT), "--out-dir", str(out_dir), "--banner", banner],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return json.loads((out_dir / "manifest.json").read_text())


def brotli_decompress(path: Path) -> bytes:
    """A .br file decoded by Node's zlib (Python's standard library has no brotli)."""
    script = (
        "process.stdout.write(require('node:zlib')"
        ".brotliDecompressSync(require('node:fs').readFileSync(process.argv[1])))"
    )
    return subprocess.run(  # noqa: S603 - our own script
        [str(NODE), "-e", script, str(path)], check=True, capture_output=True, timeout=60
    ).stdout


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three builds into one directory: banner A, banner B, banner B again."""
    if not NODE.exists() or not (BUILD_SCRIPT.parent / "node_modules").is_dir():
        pytest.fail("the island build needs Node and widget-island/node_modules: run `make island`")
    out_dir = tmp_path_factory.mktemp("island")
    for name in STALE_NAMES:  # what builds before content-hashed names left
        (out_dir / name).write_text("stale\n")
    first = build(out_dir, "/* build A */")
    files_after_first = sorted(path.name for path in out_dir.iterdir())
    second = build(out_dir, "/* build B */")
    files_after_second = sorted(path.name for path in out_dir.iterdir())
    third = build(out_dir, "/* build B */")
    return {
        "dir": out_dir,
        "first": first,
        "second": second,
        "third": third,
        "files_after_first": files_after_first,
        "files_after_second": files_after_second,
    }


def test_a_content_change_is_a_new_name_and_the_old_build_goes(builds: dict[str, Any]) -> None:
    first, second, out_dir = builds["first"], builds["second"], builds["dir"]

    assert first["file"] != second["file"]
    for manifest in (first, second):
        assert ISLAND_NAME.fullmatch(manifest["file"])
        assert manifest["file"] == f"chat-ai-widget-island.{manifest['hash']}.js"
    # The first build's files, and the unhashed ones of older builds, are gone.
    assert first["file"] in builds["files_after_first"]
    for name in (first["file"], f"{first['file']}.br", f"{first['file']}.gz", *STALE_NAMES):
        assert not (out_dir / name).exists(), name
    # What is left is exactly the current build and the manifest naming it.
    current = second["file"]
    expected = sorted(["manifest.json", current, f"{current}.br", f"{current}.gz", second["legal"]])
    assert builds["files_after_second"] == expected
    assert island_build(out_dir / "manifest.json").file == out_dir / current


def test_the_name_is_the_content_hash_and_the_same_content_the_same_name(
    builds: dict[str, Any],
) -> None:
    second, third, out_dir = builds["second"], builds["third"], builds["dir"]
    bundle = (out_dir / second["file"]).read_bytes()
    digest = hashlib.sha256(bundle).hexdigest()

    assert second["sha256"] == digest
    assert second["hash"] == digest[:12]
    assert second["bytes"] == len(bundle)
    assert bundle.startswith(b"/* build B */")
    # Deterministic: a rebuild of the same sources (another server, a later deploy) gives
    # the same name, so browsers keep their copy.
    assert third == second


def test_precompressed_siblings_hold_the_bundle(builds: dict[str, Any]) -> None:
    manifest, out_dir = builds["second"], builds["dir"]
    bundle = (out_dir / manifest["file"]).read_bytes()
    gzipped = out_dir / f"{manifest['file']}.gz"
    brotli = out_dir / f"{manifest['file']}.br"

    assert gzip.decompress(gzipped.read_bytes()) == bundle
    assert brotli_decompress(brotli) == bundle
    assert manifest["gzip_bytes"] == gzipped.stat().st_size
    assert manifest["brotli_bytes"] == brotli.stat().st_size
    assert brotli.stat().st_size < gzipped.stat().st_size < len(bundle)


def test_licenses_are_linked_from_the_bundle(builds: dict[str, Any]) -> None:
    manifest, out_dir = builds["second"], builds["dir"]
    legal = out_dir / manifest["legal"]
    text = legal.read_bytes()

    assert manifest["legal"] == (
        f"chat-ai-widget-island.{hashlib.sha256(text).hexdigest()[:12]}.LEGAL.txt"
    )
    assert b"@license React" in text
    bundle = (out_dir / manifest["file"]).read_bytes()
    assert bundle.endswith(f"/*! For license information please see {legal.name} */\n".encode())
    # The same licenses for both builds: one file, kept.
    assert builds["first"]["legal"] == manifest["legal"]
