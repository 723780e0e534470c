"""The real island build (widget-island/build.mjs), run into a temporary directory.

The bundle is served as immutable, so its name must change whenever its content does; the
build before it stays (a page loaded before a deploy still loads the island it names) and
older ones go; the precompressed siblings must hold the same bytes.
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
    """Four builds into one directory: banner A, banner B, banner B again, banner C."""
    if not NODE.exists() or not (BUILD_SCRIPT.parent / "node_modules").is_dir():
        pytest.fail("the island build needs Node and widget-island/node_modules: run `make island`")
    out_dir = tmp_path_factory.mktemp("island")
    for name in STALE_NAMES:  # what builds before content-hashed names left
        (out_dir / name).write_text("stale\n")
    first = build(out_dir, "/* build A */")
    files_after_first = sorted(path.name for path in out_dir.iterdir())
    second = build(out_dir, "/* build B */")
    files_after_second = sorted(path.name for path in out_dir.iterdir())
    read_after_second = island_build(out_dir / "manifest.json")
    third = build(out_dir, "/* build B */")
    files_after_third = sorted(path.name for path in out_dir.iterdir())
    fourth = build(out_dir, "/* build C */")
    files_after_fourth = sorted(path.name for path in out_dir.iterdir())
    return {
        "dir": out_dir,
        "first": first,
        "second": second,
        "third": third,
        "fourth": fourth,
        "files_after_first": files_after_first,
        "files_after_second": files_after_second,
        "read_after_second": read_after_second,
        "files_after_third": files_after_third,
        "files_after_fourth": files_after_fourth,
    }


def build_files(manifest: dict[str, Any]) -> list[str]:
    """The bundle and its siblings a manifest names (not the licenses, shared by builds)."""
    return [manifest["file"], f"{manifest['file']}.br", f"{manifest['file']}.gz"]


def test_a_content_change_is_a_new_name_and_the_build_before_stays(
    builds: dict[str, Any],
) -> None:
    first, second, out_dir = builds["first"], builds["second"], builds["dir"]

    assert first["file"] != second["file"]
    for manifest in (first, second):
        assert ISLAND_NAME.fullmatch(manifest["file"])
        assert manifest["file"] == f"chat-ai-widget-island.{manifest['hash']}.js"
    # The unhashed files of older checkouts are gone at the first build.
    assert first["previous"] is None
    assert not set(STALE_NAMES) & set(builds["files_after_first"])
    # After the second, both builds are there: the current one, and the one before it
    # (tabs and exports made before this build still name it), which the manifest names.
    assert second["previous"] == {
        "file": first["file"],
        "hash": first["hash"],
        "legal": first["legal"],
    }
    expected = sorted(["manifest.json", *build_files(first), *build_files(second), second["legal"]])
    assert builds["files_after_second"] == expected
    assert builds["read_after_second"].file == out_dir / second["file"]
    previous = builds["read_after_second"].previous
    assert previous is not None
    assert previous.hash == first["hash"]


def test_a_build_of_the_same_content_keeps_the_build_before(builds: dict[str, Any]) -> None:
    second, third = builds["second"], builds["third"]

    assert third["previous"] == second["previous"]
    assert builds["files_after_third"] == builds["files_after_second"]


def test_only_one_build_before_the_current_stays(builds: dict[str, Any]) -> None:
    first, second, fourth = builds["first"], builds["second"], builds["fourth"]

    assert fourth["previous"] == {
        "file": second["file"],
        "hash": second["hash"],
        "legal": second["legal"],
    }
    expected = sorted(
        ["manifest.json", *build_files(second), *build_files(fourth), fourth["legal"]]
    )
    assert builds["files_after_fourth"] == expected
    assert not set(build_files(first)) & set(builds["files_after_fourth"])


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


def test_a_previous_build_whose_bundle_is_gone_is_not_kept(tmp_path: Path) -> None:
    first = build(tmp_path, "/* build A */")
    (tmp_path / first["file"]).unlink()

    second = build(tmp_path, "/* build B */")

    assert second["previous"] is None
    assert not set(build_files(first)) & {path.name for path in tmp_path.iterdir()}
