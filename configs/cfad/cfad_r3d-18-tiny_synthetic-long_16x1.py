# The 16-frame baseline on the long synthetic preset (150-300-frame videos, tubes of 40-250 frames, up to 8
# look-alike actors with crossing paths, occlusions during which the annotation continues, noise, low
# contrast, slow camera pans; docs/synthetic_dataset.md): today's clip detector (16 consecutive frames,
# windows every 8 frames, clip tubes linked into video tubes), the paradigm the long-span configs
# (cfad_r3d-18-tiny_synthetic-long_16x4.py, _32x4.py) are measured against.
#   python tools/data/make_synthetic.py --preset long --out data/synth_long --seed 0
#   python tools/train.py configs/cfad/cfad_r3d-18-tiny_synthetic-long_16x1.py
# The base config of tools/analysis/span_sweep.py (windows of 16 to 128 frames at one training budget;
# results in docs/results.md and docs/benchmarks.md); trained as written here it has no reference numbers.
_base_ = ['./cfad_r3d-18-tiny_synthetic.py']

data_root = 'data/synth_long'
ann_file = f'{data_root}/annotations.pkl'
video_prefix = f'{data_root}/videos'

train_dataloader = dict(dataset=dict(ann_file=ann_file, data_prefix=dict(video=video_prefix)))
val_dataloader = dict(dataset=dict(ann_file=ann_file, data_prefix=dict(video=video_prefix)))
test_dataloader = val_dataloader

# the long set has about 2.5x the 16-frame windows of the default set per epoch
train_cfg = dict(max_epochs=8, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=8, eta_min=1e-5, by_epoch=True, begin=0, end=8,
         convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(interval=4))
val_evaluator = dict(ann_file=ann_file)
test_evaluator = val_evaluator
