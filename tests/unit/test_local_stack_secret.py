"""`make run` keeps one download-link secret under its data directory (issue: "Restarting
notifications invalidates every link under `make run`: no DOWNLOAD_LINK_SECRET is set, so each
process signs with a random key")."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy.local_stack import LINK_SECRET, LocalStack, kept_secret


def test_the_secret_is_generated_once_readable_by_its_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "download-link-secret"
    first = kept_secret(path)
    assert len(first) >= 43  # secrets.token_urlsafe(32)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert kept_secret(path) == first


def test_an_empty_secret_file_left_by_an_interrupted_start_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "download-link-secret"
    path.write_text("")
    assert len(kept_secret(path)) >= 43


def test_a_secret_file_too_short_to_sign_with_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "download-link-secret"
    path.write_text("short\n")
    with pytest.raises(RuntimeError, match="delete it"):
        kept_secret(path)


def test_notifications_gets_the_kept_secret_across_stacks_on_the_same_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LINK_SECRET, raising=False)
    first, second = LocalStack(data_dir=tmp_path), LocalStack(data_dir=tmp_path)
    secret = first.service_env("notifications", 8004)[LINK_SECRET]
    assert second.service_env("notifications", 8004)[LINK_SECRET] == secret
    assert second.service_env("notifications-2", 8005, service="notifications")[LINK_SECRET] == secret
    assert LINK_SECRET not in first.service_env("orders", 8001)  # only the service that signs gets it


def test_a_secret_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LINK_SECRET, "configured-secret-of-enough-length")
    assert LocalStack(data_dir=tmp_path).service_env("notifications", 8004)[LINK_SECRET] == (
        "configured-secret-of-enough-length"
    )
    assert not (tmp_path / "download-link-secret").exists()
    given = LocalStack(data_dir=tmp_path, extra_env={LINK_SECRET: "given-by-the-caller-0123456789"})
    assert given.service_env("notifications", 8004)[LINK_SECRET] == "given-by-the-caller-0123456789"
