"""natexp's wheel is built once per source and kept on disk (natexp/bundle/code.py).

Before: every bundle and every ``verify`` process rebuilt natexp's wheel with ``pip wheel``
(seconds each; the suite's bundle tests paid it every time).
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from natexp.bundle import code


@pytest.fixture
def checkout():
    """natexp's source folder; the test skips when natexp is installed rather than run from a
    checkout (no wheel is built then)."""
    from natexp.paths import SOURCE_DIR

    if SOURCE_DIR is None:
        pytest.skip("natexp is installed, not run from a checkout: no wheel is built")
    return SOURCE_DIR


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder and an empty in-process cache."""
    monkeypatch.setenv(code.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(code, "_CACHE", {})
    return tmp_path / "cache" / "wheels"


def fake_build(calls):
    def build(root):
        calls.append(root)
        data = b"PK-not-really-a-wheel-" + str(len(calls)).encode()
        return code.CodeWheel("natexp-0-py3-none-any.whl", data, "built (test)", None,
                              ("a note",))
    return build


def test_a_built_wheel_is_kept_and_reused_by_a_later_process(checkout, cache, monkeypatch):
    calls = []
    monkeypatch.setattr(code, "_build_from_source", fake_build(calls))
    first = code.natexp_wheel()
    assert len(calls) == 1
    entries = [p for p in cache.iterdir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".")
    # the entry holds the wheel and its description only
    assert sorted(p.name for p in entries[0].iterdir()) == ["meta.json", first.name]
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert meta["sha256"] == hashlib.sha256(first.data).hexdigest()

    monkeypatch.setattr(code, "_CACHE", {})  # a new process: nothing in memory
    again = code.natexp_wheel()
    assert len(calls) == 1, "the wheel was rebuilt although the cache held it"
    assert again == first


def test_a_changed_source_or_tool_gets_its_own_entry(checkout, monkeypatch):
    base = code._source_digest(checkout)
    monkeypatch.setattr(code, "_tool_versions", lambda: {"setuptools": "0"})
    assert code._source_digest(checkout) != base


def test_a_tampered_entry_is_ignored_and_rebuilt(checkout, cache, monkeypatch):
    calls = []
    monkeypatch.setattr(code, "_build_from_source", fake_build(calls))
    first = code.natexp_wheel()
    entry = next(cache.iterdir())
    (entry / first.name).write_bytes(b"something else")
    monkeypatch.setattr(code, "_CACHE", {})
    again = code.natexp_wheel()
    assert len(calls) == 2
    assert again.data != b"something else"


def test_a_failed_build_is_not_kept(checkout, cache, monkeypatch):
    monkeypatch.setattr(code, "_build_from_source",
                        lambda root: code.CodeWheel(None, why_not="pip failed"))
    assert code.natexp_wheel().why_not == "pip failed"
    assert not cache.exists() or not any(cache.iterdir())


def test_an_empty_setting_turns_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv(code.CACHE_ENV, "")
    assert code.wheel_cache_dir() is None
    monkeypatch.delenv(code.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert code.wheel_cache_dir() == tmp_path / "natexp" / "wheels"


def test_a_folder_left_by_a_killed_process_is_removed_and_a_live_ones_kept(cache):
    cache.mkdir(parents=True)
    dead = cache / ".tmp-999999999-abc"  # no such process
    live = cache / f".tmp-{os.getppid()}-abc"
    for d in (dead, live):
        d.mkdir()
        (d / "x.whl").write_bytes(b"code")
    code._remove_stale_temps(cache)
    assert not dead.exists() and live.exists()
