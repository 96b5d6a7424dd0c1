"""tools/analysis/window_speed.py: whole-video frames/s of a config with random weights, in its own process as
a user runs it, on the videos of the tiny synthetic set; its table, its doc block and its refusals."""
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools/analysis/window_speed.py')
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic-long_32x4.py')


def test_window_speed_times_the_configs_windows_and_writes_its_block(tiny_synth, tmp_path):
    root, _ = tiny_synth
    doc = tmp_path / 'bench.md'
    doc.write_text('# Benchmarks\n')
    videos = osp.join(root, 'videos', '*', '*.mp4')
    run = subprocess.run([sys.executable, TOOL, CONFIG, '--video-glob', videos,
                          '--videos', '1', '--repeats', '1', '--input-size', '48', '64', '--cfg-options',
                          'test_dataloader.dataset.clip_len=8', 'test_dataloader.dataset.frame_interval=2',
                          'test_dataloader.dataset.test_stride=7', 'model.frame_interval=2',
                          'model.coarse_head.tube_coder.max_frames=15', '--doc', str(doc), '--block', 'ws'],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'windows of 8 frames every 2 (span 15), a window every 7 frames, input 64x48' in run.stdout
    text = doc.read_text()
    assert text.startswith('# Benchmarks\n') and '<!-- ws:start -->' in text
    # 24 frames in windows of 8 frames every 2 (span 15), one every 7 frames: starts 0, 7 and 9 (the last one
    # ends at the last frame), so 24 backbone frames for 24 frames
    row = [line for line in text.splitlines() if line.startswith('| 16 (8x2) | 15 |')]
    assert len(row) == 1 and row[0].endswith('| 1.00 |')
    assert '| backbone |' in text and '| all of CFAD |' in text
    assert 'random weights' in text and '--doc' not in text
    bad = subprocess.run([sys.executable, TOOL, CONFIG, '--videos', '0'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'must be >= 1' in bad.stderr
    none = subprocess.run([sys.executable, TOOL, CONFIG, '--video-glob', str(tmp_path / '*.mp4')],
                          capture_output=True, text=True)
    assert none.returncode == 1 and 'no video files' in none.stderr
