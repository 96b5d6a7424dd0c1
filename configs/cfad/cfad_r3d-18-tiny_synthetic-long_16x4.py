# CFAD on 61-frame windows of the long synthetic preset (16 frames sampled every 4, windows every 30 frames)
# with the settings, the schedule and the seed (0) of the `actor-add-fusion` run, the long-window recipe
# chosen in docs/model.md (frame-mAP close to the best 16x4 run's, faster; docs/results.md,
# docs/benchmarks.md: tools/analysis/span_sweep.py --spans 16x4 --knot-interval 8 with the actor-head
# settings below; seed 1 in the `actor-add-fusion-seed1` tables).
#   python tools/data/make_synthetic.py --preset long --out data/synth_long --seed 0
#   python tools/train.py configs/cfad/cfad_r3d-18-tiny_synthetic-long_16x4.py
#   python tools/test.py configs/cfad/cfad_r3d-18-tiny_synthetic-long_16x4.py \
#       work_dirs/cfad_r3d-18-tiny_synthetic-long_16x4/iter_2500.pth
# Against the 16-frame baseline (cfad_r3d-18-tiny_synthetic-long_16x1.py) it does NOT yet reach the targets
# of the long-window study (docs/model.md): lower frame-mAP and video-mAP@0.5, and on this tiny backbone the
# heads cost more than the backbone itself (docs/benchmarks.md). Its training took 30.3 and 36.1 min on 2 CPU
# cores in those two runs (their tables), more than the 25 minutes the study allows.
_base_ = ['./cfad_r3d-18-tiny_synthetic-long_16x1.py']

clip_len = 16
frame_interval = 4
span = (clip_len - 1) * frame_interval + 1  # 61
stride = span // 2  # 30: windows every half span, in training and at test time
iters = 2500

model = dict(
    frame_interval=frame_interval,
    # a cubic B-spline with a knot at most every 8 frames, decoded at every frame of the span
    coarse_head=dict(
        tube_coder=dict(_delete_=True, type='SplineTubeCoder', max_frames=span, knot_interval=8)),
    # each coarse tube is moved onto the actor peaks before the refine stage (docs/model.md, StepActorHead):
    # maps at stride 4 at every sampled input frame (a 2-D branch on the frame, added to the features of
    # the backbone step that covers it), each tube followed from its best peak with the displacement the
    # head learns at every peak
    roi_head=dict(
        actor_head=dict(type='StepActorHead', frame_widths=(16, 32), search_radius=3, distance_sigma=2.0,
                        follow=True, motion=True, at_input_frames=True, fusion='add')))

train_dataloader = dict(
    dataset=dict(clip_len=clip_len, frame_interval=frame_interval, train_stride=stride,
                 temporal_jitter=span // 8))
val_dataloader = dict(dataset=dict(clip_len=clip_len, frame_interval=frame_interval, test_stride=stride))
test_dataloader = val_dataloader

# 2500 iterations of 4 windows, the budget of every run of the long-window study; one validation (on the
# test split, as the base config) at the end
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=iters, eta_min=1e-5, by_epoch=False, begin=0, end=iters)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=iters))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
randomness = dict(seed=0)
