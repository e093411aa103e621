"""depthmaster-fleet on a local Ray instance (2 CPUs): bags in, each output byte for byte what depthmaster-bag writes
for it (the tiny model; the test double where the scale tracker has to fit), a corrupt bag reported while the
others finish, a stopped run and a killed run resumed to the same outputs, a killed model actor retried by Ray,
the inputs a user can name, and the benchmark command."""


import pytest

from depthmaster_ros.fleet.inputs import InputError, fleet_inputs
from depthmaster_ros.samples.sample_bag import write_sample_bag

from bag_helpers import SIZE


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three good bags (mcap and sqlite3) and a corrupt one, in one folder."""
    folder = tmp_path_factory.mktemp("archive")
    write_sample_bag(folder / "bag_a", frames=6, **SIZE)
    write_sample_bag(folder / "bag_b", frames=6, storage="sqlite3", **SIZE)
    write_sample_bag(folder / "bag_c", frames=9, **SIZE)
    corrupt = write_sample_bag(folder / "corrupt", frames=2, **SIZE)
    (corrupt / "corrupt.mcap").write_bytes(b"this is not an mcap file" * 100)
    return folder


def test_inputs_a_user_can_name(archive, tmp_path):
    manifest = tmp_path / "day.txt"
    manifest.write_text(f"# the day's bags\n{archive / 'bag_b'}\n\n{archive}/bag_[ac]\n")
    assert [(i.path.name, i.name) for i in fleet_inputs([str(manifest)])] == [
        ("bag_b", "bag_b"), ("bag_a", "bag_a"), ("bag_c", "bag_c")]
    assert [i.name for i in fleet_inputs([str(archive)])] == ["bag_a", "bag_b", "bag_c", "corrupt"]
    single = next((archive / "bag_a").glob("*.mcap"))
    assert [(i.path, i.name) for i in fleet_inputs([str(single)])] == [(single, single.stem)]
    for day in ("mon", "tue"):  # the same name twice: named by their paths
        write_sample_bag(tmp_path / day / "run", frames=1, width=16, height=12)
    assert [i.name for i in fleet_inputs([str(tmp_path / "*" / "run")])] == ["mon__run", "tue__run"]
    (tmp_path / "notes.md").write_text("hello")
    for bad, message in ((tmp_path / "nothing", "no such bag, folder or manifest"),
                         (tmp_path / "x*", "the pattern matches nothing"), (tmp_path / "notes.md", "not a bag")):
        with pytest.raises(InputError, match=message):
            fleet_inputs([str(bad)])


