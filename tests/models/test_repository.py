"""service.models.repository: staging and atomic commits, card validation, version listing, name safety."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from service.errors import CardError
from service.models.card import ModelCard
from service.models.repository import (
    ASSETS_EXTRA_DIR,
    CARD_FILE,
    SAVED_MODEL_FILE,
    STAGING_PREFIX,
    Repository,
    is_valid_model_name,
)


def card(**changes: Any) -> dict[str, Any]:
    doc = {
        "task": "regression",
        "signature_name": "serving_default",
        "inputs": [{"name": "x", "dtype": "float32", "shape": [-1]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [-1]}],
        "class_labels": None,
    }
    doc.update(changes)
    return doc


def publish(repo: Repository, name: str, doc: dict[str, Any] | None = None) -> int:
    with repo.stage(name) as staged:
        (staged.path / SAVED_MODEL_FILE).write_bytes(b"stand-in for a SavedModel")
        return staged.commit(card() if doc is None else doc)


def staging_folders(repo: Repository, name: str) -> list[Path]:
    return list(repo.model_dir(name).glob(f"{STAGING_PREFIX}*"))


def test_commits_number_versions_from_one(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    assert [publish(repo, "m"), publish(repo, "m")] == [1, 2]
    assert repo.versions("m") == [1, 2]
    assert staging_folders(repo, "m") == []


def test_a_published_version_is_readable_by_other_users(tmp_path: Path) -> None:
    # A trainer and a server often run as different users (containers, Kubernetes volumes).
    repo = Repository(tmp_path)
    previous = os.umask(0o022)
    try:
        publish(repo, "m")
    finally:
        os.umask(previous)
    vdir = repo.version_dir("m", 1)
    assert vdir.stat().st_mode & 0o005 == 0o005  # others may list and enter the version folder
    for path in (vdir / SAVED_MODEL_FILE, repo.card_path("m", 1)):
        assert path.stat().st_mode & 0o004, path


def test_commit_writes_a_card_with_name_and_version(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    publish(repo, "m", card(description="hello"))
    loaded = repo.read_card("m", 1)
    assert (loaded.name, loaded.version, loaded.task) == ("m", 1, "regression")
    assert loaded.raw["description"] == "hello"
    assert json.loads(repo.card_path("m", 1).read_text())["version"] == 1


def test_a_failure_inside_stage_leaves_nothing_behind(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    with pytest.raises(RuntimeError), repo.stage("m") as staged:
        (staged.path / SAVED_MODEL_FILE).write_bytes(b"half written")
        raise RuntimeError("export crashed")
    assert repo.versions("m") == []
    assert staging_folders(repo, "m") == []
    assert not (repo.model_dir("m") / "1").exists()


def test_a_staged_folder_without_saved_model_is_refused(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    with pytest.raises(CardError, match=SAVED_MODEL_FILE), repo.stage("m") as staged:
        staged.commit(card())
    assert repo.versions("m") == []
    assert staging_folders(repo, "m") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "clustering"}, "task"),
        ({"inputs": "x"}, "lists"),
        ({"outputs": [{"name": "y", "dtype": "complex64", "shape": [-1]}]}, "dtype"),
        ({"outputs": [{"name": "y", "shape": [-1]}]}, "needs a name, a dtype"),
        ({"inputs": [{"name": "x", "dtype": "float32", "shape": ["any"]}]}, "integer shape"),
        ({"class_labels": "0,1"}, "class_labels"),
    ],
)
def test_commit_refuses_an_invalid_card(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    repo = Repository(tmp_path)
    with pytest.raises(CardError, match=message):
        publish(repo, "m", card(**changes))
    assert repo.versions("m") == []
    assert staging_folders(repo, "m") == []


def test_card_requires_its_fields() -> None:
    with pytest.raises(CardError, match="task"):
        ModelCard.from_dict({"name": "m", "version": 1, "inputs": [], "outputs": []})
    with pytest.raises(CardError, match="not an integer"):
        ModelCard.from_dict({**card(), "name": "m", "version": "one"})


def test_read_card_rejects_missing_unreadable_and_mismatched_cards(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    publish(repo, "m")
    path = repo.card_path("m", 1)
    path.write_text(json.dumps({**card(), "name": "other", "version": 1}))
    with pytest.raises(CardError, match="describes 'other'"):
        repo.read_card("m", 1)
    path.write_text("{not json")
    with pytest.raises(CardError, match="unreadable"):
        repo.read_card("m", 1)
    path.unlink()
    with pytest.raises(CardError, match="no card"):
        repo.read_card("m", 1)


def test_versions_ignores_staging_non_numeric_and_empty_folders(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    publish(repo, "m")
    model_dir = repo.model_dir("m")
    for name in (f"{STAGING_PREFIX}abc", "latest", "7"):
        (model_dir / name).mkdir()
    (model_dir / f"{STAGING_PREFIX}abc" / SAVED_MODEL_FILE).write_bytes(b"x")
    (model_dir / "latest" / SAVED_MODEL_FILE).write_bytes(b"x")
    assert repo.versions("m") == [1]  # "7" has no SavedModel, so it is not a version yet
    assert repo.versions("absent") == []


def test_only_ascii_digit_folders_are_versions(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    publish(repo, "m")
    for name in (
        "\u00b2",
        "\u0661",
        "\u0663",
        "01x",
    ):  # str.isdigit() says yes to the first three; int() reads two
        (repo.model_dir("m") / name).mkdir()
        (repo.model_dir("m") / name / SAVED_MODEL_FILE).write_bytes(b"x")
    assert repo.versions("m") == [1]
    assert publish(repo, "m") == 2


def test_next_version_follows_the_highest_number(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    (tmp_path / "m" / "5").mkdir(parents=True)
    assert publish(repo, "m") == 6


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../etc", "a\\b", ".hidden", "", "a..b", "x" * 129])
def test_unsafe_model_names_are_refused(tmp_path: Path, name: str) -> None:
    assert not is_valid_model_name(name)
    with pytest.raises(ValueError, match="not a valid model name"):
        Repository(tmp_path).model_dir(name)


@pytest.mark.parametrize("name", ["mnist", "mnist_cnn", "half-plus-two", "v1.2", "A0"])
def test_ordinary_model_names_are_accepted(name: str) -> None:
    assert is_valid_model_name(name)


def test_model_names_lists_only_valid_folders(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    publish(repo, "b")
    publish(repo, "a")
    (tmp_path / ".cache").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    assert repo.model_names() == ["a", "b"]
    assert Repository(tmp_path / "missing").model_names() == []


def test_card_file_lives_in_assets_extra(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    publish(repo, "m")
    assert repo.card_path("m", 1) == tmp_path / "m" / "1" / ASSETS_EXTRA_DIR / CARD_FILE
