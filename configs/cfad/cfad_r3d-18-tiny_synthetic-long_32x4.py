# CFAD on long spans of the long synthetic preset: 32 frames sampled every 4 frames, i.e. windows of 125
# frames, every 62 frames at test time (half a span) instead of 16-frame clips every 8 frames. The
# trajectory is a cubic B-spline with a knot every ~16 frames (its capacity grows with the span),
# decoded at EVERY frame of the span; key timestamps may be any frame of it.
#   python tools/data/make_synthetic.py --preset long --out data/synth_long --seed 0
#   python tools/train.py configs/cfad/cfad_r3d-18-tiny_synthetic-long_32x4.py
# Measured: tools/analysis/span_sweep.py trains windows of 16 to 128 frames from the 16x1 config at one
# budget and writes the results into docs/results.md and docs/benchmarks.md; this 32x4 config has no
# reference numbers (cfad_r3d-18-tiny_synthetic-long_16x4.py is the measured long-window config).
# Its actor head is that of the 16x4 config (the best of the actor-head runs measured on 61-frame windows,
# two seeds each; the actor-* tables of docs/results.md), not measured on these 125-frame windows; the knot
# interval stays 16 frames (the 16x4 runs use 8).
_base_ = ['./cfad_r3d-18-tiny_synthetic-long_16x4.py']

clip_len = 32
frame_interval = 4
span = (clip_len - 1) * frame_interval + 1  # 125

model = dict(
    frame_interval=frame_interval,
    coarse_head=dict(
        tube_coder=dict(_delete_=True, type='SplineTubeCoder', max_frames=span, knot_interval=16)))

train_dataloader = dict(
    dataset=dict(clip_len=clip_len, frame_interval=frame_interval, train_stride=31, temporal_jitter=8))
val_dataloader = dict(dataset=dict(clip_len=clip_len, frame_interval=frame_interval, test_stride=62))
test_dataloader = val_dataloader

# a 125-frame window every 31 frames gives about a sixth of the baseline's training clips per epoch, each
# twice as long: 24 epochs take about the baseline's 8 epochs of wall-clock time (tools/train.py prints it)
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=24, val_begin=1, val_interval=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=24, eta_min=1e-5, by_epoch=True, begin=0, end=24,
         convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=12))
log_processor = dict(by_epoch=True)
