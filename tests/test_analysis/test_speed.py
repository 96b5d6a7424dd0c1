"""cfad_mm.analysis.speed: the peak-memory meter, the timing helpers, the window grid, the run functions."""
import os.path as osp
import time
import types

import numpy as np
import pytest
import torch
from mmengine.config import Config

import cfad_mm.analysis.speed as speed

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
R50 = osp.join(REPO, 'configs/cfad/cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24.py')
MIB = 2**20


def test_peak_memory_sees_a_known_cpu_allocation():
    size = 64 * MIB  # above glibc's largest mmap threshold: a fresh mapping, resident once written
    with speed.PeakMemory('cpu') as mem:
        x = torch.ones(size // 4, dtype=torch.float32)
    assert x.numel() * 4 == size
    assert mem.peak >= size and mem.peak_total >= mem.base + size
    assert mem.peak_mib == mem.peak / MIB and 'resident' in mem.kind
    del x


def test_peak_memory_samples_a_freed_allocation():
    size = 64 * MIB
    with speed.PeakMemory(torch.device('cpu'), interval=0.001) as mem:
        x = torch.ones(size // 4, dtype=torch.float32)
        time.sleep(0.2)  # the sampling thread reads the resident size meanwhile
        del x
    assert mem.peak >= size


def test_peak_memory_without_proc_uses_the_process_peak(monkeypatch):
    mem = speed.PeakMemory()
    mem._statm = False
    with mem:
        pass
    assert mem.peak >= 0 and mem.peak_total > 50 * MIB  # a torch process


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_peak_memory_cuda():
    with speed.PeakMemory('cuda') as mem:
        x = torch.ones(MIB, device='cuda')
    assert mem.peak >= 4 * MIB and mem.kind == 'torch.cuda.max_memory_allocated'
    del x


class FakeClock:
    """Returns the given readings in turn."""

    def __init__(self, readings):
        self.readings = list(readings)
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return self.readings.pop(0)


def test_time_runs_drops_warmup_and_reads_the_clock_around_each_call():
    calls, seen = [], []
    clock = FakeClock([0, 1, 10, 12, 20, 23, 30, 34, 40, 41])  # durations 1 | 2 3 4 1
    times = speed.time_runs(lambda: calls.append(1), repeats=4, warmup=1, clock=clock, on_run=seen.append)
    assert times == [2, 3, 4, 1] and len(calls) == 5 and clock.reads == 10 and seen == [0, 1, 2, 3, 4]
    import statistics
    assert statistics.median(times) == 2.5
    out, dt = speed.time_call(lambda: 'out', clock=FakeClock([5, 7.5]))
    assert out == 'out' and dt == 2.5
    with pytest.raises(ValueError):
        speed.time_runs(lambda: None, repeats=0)


def test_interleaved_runs_alternate_the_jobs():
    order = []
    jobs = {'a': lambda: order.append('a'), 'b': lambda: order.append('b')}
    clock = FakeClock([0, 1, 0, 5, 0, 2, 0, 6, 0, 3, 0, 7])
    times, peaks = speed.interleaved_runs(jobs, repeats=2, warmup=1, clock=clock, memory=False)
    assert order == ['a', 'b'] * 3
    assert times == {'a': [2, 3], 'b': [6, 7]} and peaks == {'a': 0, 'b': 0}
    times, peaks = speed.interleaved_runs({'alloc': lambda: torch.ones(MIB)}, repeats=1)
    assert len(times['alloc']) == 1 and peaks['alloc'] >= 0


def test_time_calls_accumulates_and_restores():
    layer = torch.nn.Linear(3, 3)
    acc = {}
    restore = speed.time_calls(layer, 'forward', acc, 'fc')
    layer(torch.zeros(2, 3))
    layer(torch.zeros(2, 3))
    assert 0 < acc['fc'] < 1 and 'forward' in vars(layer)
    restore()
    assert 'forward' not in vars(layer)  # the class method again
    module = types.ModuleType('m')
    module.f = original = (lambda x: x + 1)
    restore = speed.time_calls(module, 'f', acc, 'f')
    assert module.f(1) == 2 and module.f is not original and acc['f'] > 0
    restore()
    assert module.f is original


def test_window_grid_and_backbone_frames_per_output_frame():
    pos, valid = speed.window_grid(10, 4, 2)
    assert pos[:, 0].tolist() == [0, 2, 4, 6] and valid.all()
    assert speed.backbone_frames_per_output_frame(10, 4, 2) == pytest.approx(16 / 10)
    assert speed.backbone_frames_per_output_frame(64, 16, 16) == 1.0  # every frame once
    pos, valid = speed.window_grid(10, 4, 5, frame_interval=3)  # span 10: one window 0 3 6 9
    assert pos.tolist() == [[0, 3, 6, 9]] and valid.all()
    pos, valid = speed.window_grid(3, 4, 2)  # shorter than a window: padded with the last frame
    assert pos.tolist() == [[0, 1, 2, 2]] and valid.tolist() == [[True, True, True, False]]


def test_centred_clip():
    frames = torch.arange(10).view(1, 10, 1, 1)
    assert speed.centred_clip(frames, 0, 4).flatten().tolist() == [0, 0, 0, 1]
    assert speed.centred_clip(frames, 5, 4).flatten().tolist() == [3, 4, 5, 6]
    assert speed.centred_clip(frames, 9, 4).flatten().tolist() == [7, 8, 9, 9]
    assert speed.centred_clip(frames, 5, 4, frame_interval=2).flatten().tolist() == [1, 3, 5, 7]


def test_synthetic_video_shapes():
    frames, boxes = speed.synthetic_video(5, (24, 32), num_actors=3)
    assert frames.shape == (5, 24, 32, 3) and frames.dtype == np.uint8
    assert boxes.shape == (5, 3, 4) and (boxes[..., 2] <= 32).all() and (boxes[..., 3] <= 24).all()
    t = speed.video_tensor(frames)
    assert t.shape == (3, 5, 24, 32) and t.dtype == torch.uint8
    video = speed.ArrayFrames(frames)
    assert video.num_frames == 5 and video.shape == (24, 32) and np.array_equal(video.get([2])[0], frames[2])


def test_run_cfad_on_sparse_windows_boxes_every_frame():
    """frame_interval=2: windows of 4 decoded frames span 7 frames; the clips cover every frame of the video;
    a model built for another interval says so."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    DefaultScope.get_instance('test_speed_sparse', scope_name='mmaction')
    cfg = Config.fromfile(TINY)
    cfg.model.frame_interval = 2
    model = speed.build_cfad(cfg, (48, 64))
    frames, _ = speed.synthetic_video(20, (48, 64))
    res = speed.run_cfad(model, speed.ArrayFrames(frames), clip_len=4, stride=3, frame_interval=2)
    covered = np.zeros(20, bool)
    for clip in res['clips']:
        assert len(clip['frame_numbers']) == 7
        covered[np.asarray(clip['frame_numbers'])[clip['frame_valid']] - 1] = True
    assert covered.all()
    with pytest.raises(ValueError, match='frame_interval'):
        speed.run_cfad(speed.build_cfad(TINY, (48, 64)), speed.ArrayFrames(frames), 4, 3, frame_interval=2)


def test_backbone_channels():
    # the AVA-style head reads the BACKBONE output: with a neck that is the neck's input, not feat_channels
    r50 = Config.fromfile(R50)
    assert r50.model.feat_channels == 256 and speed.backbone_channels(r50) == 1024
    tiny = Config.fromfile(TINY)
    assert speed.backbone_channels(tiny) == tiny.model.feat_channels == 64


@pytest.fixture(scope='module')
def tiny_model():
    from mmengine.registry import DefaultScope
    DefaultScope.get_instance('test_speed', scope_name='mmaction')
    return speed.build_cfad(TINY, (48, 64))


def test_run_functions_on_the_tiny_model(tiny_model):
    frames, boxes = speed.synthetic_video(10, (48, 64))
    frames_t = speed.video_tensor(frames)
    with torch.inference_mode():
        res = speed.run_cfad(tiny_model, speed.ArrayFrames(frames), 4, 2, batch_size=2)
        assert res['nframes'] == 10 and len(res['clips']) == 4
        assert speed.run_backbone(tiny_model, frames_t, 4, 2, batch_size=3) == 4 * 4
        assert speed.run_backbone(tiny_model, frames_t, 4, 4, frame_interval=2) == 2 * 4  # span 7
        ava = speed.build_ava_detector(tiny_model.cfg)
        assert speed.run_ava(ava, frames_t, boxes, [0, 5, 9], 4, frame_interval=2, batch_size=2) == 3


def test_stage_breakdown_restores_the_model(tiny_model):
    from cfad_mm.models.detectors import cfad as cfad_module
    original = cfad_module.outputs_to_clip_tubes
    frames, _ = speed.synthetic_video(8, (48, 64))
    spent, total = speed.stage_breakdown(tiny_model, speed.ArrayFrames(frames), 4, 2, batch_size=2, repeats=1,
                                         warmup=0)
    assert set(spent) == {label for label, _ in speed.STAGES}
    assert spent['neck'] == 0  # the tiny config has none
    assert 0 < spent['backbone'] < spent['predict (all of the model)'] <= total
    assert spent['post-processing (NMS, mapping)'] > 0
    assert 'predict' not in vars(tiny_model) and 'forward' not in vars(tiny_model.backbone)
    assert cfad_module.outputs_to_clip_tubes is original

    class Broken(speed.ArrayFrames):
        def get(self, positions):
            raise RuntimeError('broken video')

    with pytest.raises(RuntimeError, match='broken video'):
        speed.stage_breakdown(tiny_model, Broken(frames), 4, 2, repeats=1, warmup=0)
    assert 'predict' not in vars(tiny_model) and cfad_module.outputs_to_clip_tubes is original
