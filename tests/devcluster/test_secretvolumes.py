"""The stand-in's Secret volumes look like a kubelet's: files behind ``..data``, swapped in
one rename, so a server watching its key file sees what it would see in a real pod."""

from __future__ import annotations

from pathlib import Path

from e2e.devcluster.secretvolumes import secret_volumes, write_atomically


def test_files_are_links_through_data_to_one_timestamped_directory(tmp_path: Path) -> None:
    write_atomically(tmp_path, {"keys.json": b"one"}, 0o440)

    data = tmp_path / "..data"
    assert data.is_symlink() and data.readlink().name.startswith("..")
    assert (tmp_path / "keys.json").readlink() == Path("..data/keys.json")
    assert (tmp_path / "keys.json").read_bytes() == b"one"
    assert (data / "keys.json").stat().st_mode & 0o777 == 0o440


def test_an_update_swaps_every_file_at_once_and_drops_the_old_directory(tmp_path: Path) -> None:
    write_atomically(tmp_path, {"keys.json": b"one", "gone": b"x"}, 0o440)
    first = (tmp_path / "..data").readlink()

    write_atomically(tmp_path, {"keys.json": b"two"}, 0o440)

    assert (tmp_path / "..data").readlink() != first
    assert not (tmp_path / first).exists()
    assert (tmp_path / "keys.json").read_bytes() == b"two"
    assert not (tmp_path / "gone").exists()
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".."))
    assert len(hidden) == 2 and "..data" in hidden  # the link and the one live directory


def test_secret_volumes_are_found_with_their_mode_and_directory(tmp_path: Path) -> None:
    pod = {
        "spec": {
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "keys", "secret": {"secretName": "iris-receipt-keys", "defaultMode": 288}},
                {"name": "other", "secret": {"secretName": "plain"}},
            ]
        }
    }
    found = secret_volumes(pod, tmp_path)

    assert [(v.secret, v.directory, v.mode) for v in found] == [
        ("iris-receipt-keys", tmp_path / "volumes" / "keys", 0o440),
        ("plain", tmp_path / "volumes" / "other", 0o644),
    ]
