"""`vla grounding` writes scenes `vla train grounding:=` reads, or says what is wrong."""

from vla_bringup.cli import main
from vla_common.grounding import GroundingScenes


def test_vla_grounding_writes_scenes_at_the_asked_sizes(tmp_path, capsys):
    output = tmp_path / 'scenes.npz'
    arguments = ['scenes:=2', 'seed:=5', 'camera_size:=160x120', 'image_size:=32']
    assert main(['grounding', f'output:={output}', *arguments]) == 0
    scenes = GroundingScenes.load(output)
    assert scenes.images.shape == (2, 2, 32, 32, 3)
    assert list(scenes.seeds) == [5, 6]
    assert scenes.instructions.shape == (2, 3)
    assert scenes.rendered_shapes.tolist() == [[120, 160], [120, 160]]  # height, width
    assert str(output) in capsys.readouterr().out


def test_vla_grounding_refuses_what_it_cannot_do(tmp_path, capsys):
    assert main(['grounding', 'scenes:=2']) == 2
    assert 'output:=' in capsys.readouterr().err
    bad = ['grounding', f'output:={tmp_path / "x.npz"}', 'robot:=aloha', 'scenes:=1']
    assert main(bad) == 2
    assert 'nothing to ground' in capsys.readouterr().err
