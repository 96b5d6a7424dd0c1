# CFAD on JHMDB-21 with one window per video: JHMDB-21 videos have at most 40 frames, so 14 frames sampled
# every 3 frames (a span of 40 frames) see a whole video at once; the tube is one trajectory (a cubic
# B-spline, a knot every ~10 frames) decoded at every frame, and no linking is left to do. Otherwise the
# I3D-R50 setting of cfad_i3d-r50_8xb8-16x1x1-20e_jhmdb-21.py (same data layout, commands, pretrained
# weights).
# Not trained in this repository (no GPU here): there are no reference numbers for it yet.
_base_ = ['./cfad_i3d-r50_8xb8-16x1x1-20e_jhmdb-21.py']

clip_len = 14
frame_interval = 3
span = (clip_len - 1) * frame_interval + 1  # 40

model = dict(
    frame_interval=frame_interval,
    coarse_head=dict(
        tube_coder=dict(_delete_=True, type='SplineTubeCoder', max_frames=span, knot_interval=10)))

train_dataloader = dict(dataset=dict(clip_len=clip_len, frame_interval=frame_interval, train_stride=span))
val_dataloader = dict(dataset=dict(clip_len=clip_len, frame_interval=frame_interval, test_stride=span))
test_dataloader = val_dataloader
