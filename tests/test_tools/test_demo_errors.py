"""tools/demo.py and tools/deployment/export_onnx.py --video: one ``error: ...`` line and a non-zero exit
status for unusable inputs (no traceback), and the output directory checked before the model loads."""
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))


def write_video(path, num_frames, size=(128, 96)):
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (w, h))
    rng = np.random.default_rng(0)
    for _ in range(num_frames):
        writer.write(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8))
    writer.release()
    return str(path)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    from cfad_mm.apis import init_detector
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'untrained.pth'
    torch.save({'state_dict': init_detector(CONFIG).state_dict(), 'meta': {}}, path)
    return str(path)


@pytest.fixture
def bad_inputs(tmp_path):
    """Videos the tools must refuse with a one-line error: {name: (path, message regex)}."""
    corrupt = tmp_path / 'corrupt.mp4'
    corrupt.write_bytes(b'this is not a video')
    empty = tmp_path / 'empty_folder'
    empty.mkdir()
    return dict(
        missing=(str(tmp_path / 'missing.mp4'), r'^error: video not found: .*missing\.mp4$'),
        corrupt=(str(corrupt), r'^error: .*corrupt\.mp4: cannot decode this video file'),
        empty_folder=(str(empty), r'^error: .*empty_folder: frame folder holds no image'))


def exit_message(info):
    assert info.value.code not in (0, None)
    return str(info.value.code)


def test_demo_media_errors_exit_with_one_line(tmp_path, checkpoint, bad_inputs):
    import demo
    for name, (video, pattern) in bad_inputs.items():
        with pytest.raises(SystemExit) as info:
            demo.main([video, CONFIG, checkpoint, '--out', str(tmp_path / f'out_{name}')])
        message = exit_message(info)
        assert '\n' not in message and re.search(pattern, message), (name, message)
        assert not osp.exists(tmp_path / f'out_{name}')  # refused before anything is written
    # a frame folder whose second image is unreadable fails during the inference, with the same format
    folder = tmp_path / 'frames'
    folder.mkdir()
    cv2.imwrite(str(folder / '0001.jpg'), np.zeros((48, 64, 3), np.uint8))
    (folder / '0002.jpg').write_bytes(b'truncated')
    with pytest.raises(SystemExit, match=r'^error: .*0002\.jpg: cannot read this image \(empty, truncated or '
                       r'not an image\)$') as info:
        demo.main([str(folder), CONFIG, checkpoint, '--out', str(tmp_path / 'o')])
    assert not osp.exists(tmp_path / 'o' / 'tubes.json')


def test_demo_input_size_error_and_limit_flags(tmp_path, checkpoint):
    import demo
    wide = write_video(tmp_path / 'wide.mp4', 3, (2000, 16))
    out = tmp_path / 'out'
    with pytest.raises(SystemExit, match=r'^error: .*wide\.mp4: the 2000x16 video \(decoded at 1280x10\) '
                       r'gives a 12288x96 \(WxH\) network input .*: long side 12288 px > '
                       r'max_input_side=2048\. .*'
                       r'0 disables it\)\.$'):
        demo.main([wide, CONFIG, checkpoint, '--out', str(out), '--no-render'])
    assert not osp.exists(out / 'tubes.json')
    video = write_video(tmp_path / 'v.mp4', 2)
    with pytest.raises(SystemExit, match=r'^error: .*: area 12288 px > max_input_area=10000 '):
        demo.main([video, CONFIG, checkpoint, '--out', str(out), '--no-render', '--max-input-area', '10000'])
    data = demo.main([video, CONFIG, checkpoint, '--out', str(out), '--no-render', '--max-input-side', '0',
                      '--max-input-area', '0'])
    assert data['nframes'] == 2 and (out / 'tubes.json').is_file()
    with pytest.raises(SystemExit):  # argparse: a negative limit
        demo.parse_args([video, CONFIG, checkpoint, '--max-input-side', '-1'])


def test_demo_checks_out_before_loading_the_model(tmp_path, checkpoint, monkeypatch):
    import demo
    video = write_video(tmp_path / 'v.mp4', 2)

    def no_model(*args, **kwargs):
        raise AssertionError('the model was loaded')

    monkeypatch.setattr(demo, 'init_detector', no_model)
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    for out, reason in ((a_file, 'FileExistsError'), (a_file / 'sub', 'NotADirectoryError: Not a directory')):
        expected = f'^error: cannot write to the output directory {out} \\(--out\\): {reason}'
        with pytest.raises(SystemExit, match=expected):
            demo.main([video, CONFIG, checkpoint, '--out', str(out)])
    with pytest.raises(AssertionError, match='the model was loaded'):  # a new --out is created at once
        demo.main([video, CONFIG, checkpoint, '--out', str(tmp_path / 'new' / 'dir')])
    assert (tmp_path / 'new' / 'dir').is_dir()


def test_demo_error_exit_status_without_traceback(tmp_path, checkpoint):
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'demo.py'), str(tmp_path / 'missing.mp4'),
                           CONFIG, checkpoint, '--out', str(tmp_path / 'o')], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f'error: video not found: {tmp_path / "missing.mp4"}'
    assert 'Traceback' not in proc.stderr


def test_export_onnx_video_errors_exit_with_one_line(tmp_path, checkpoint, bad_inputs):
    import export_onnx
    shape = ['--shape', '1', '3', '8', '48', '64']
    for name, (video, pattern) in bad_inputs.items():
        with pytest.raises(SystemExit, match=pattern) as info:
            export_onnx.main([CONFIG, checkpoint, '--out', str(tmp_path / f'{name}.onnx'), '--video', video] +
                             shape)
        assert '\n' not in exit_message(info)
        assert not osp.exists(tmp_path / f'{name}.onnx')
