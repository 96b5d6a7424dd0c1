# CFAD on long spans of UCF101-24 (untrimmed videos, long tubes): the I3D-R50 setting of
# cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24.py with 32 frames sampled every 4 frames (windows of 125 frames,
# every 62 frames at test time), a cubic B-spline trajectory with a knot every ~16 frames, boxes at every
# frame of a window. Same data layout, commands and pretrained weights as the 16-frame config.
# Not trained in this repository (no GPU here): there are no reference numbers for it yet.
_base_ = ['./cfad_i3d-r50_8xb8-16x1x1-8e_ucf101-24.py']

clip_len = 32
frame_interval = 4
span = (clip_len - 1) * frame_interval + 1  # 125

model = dict(
    frame_interval=frame_interval,
    coarse_head=dict(
        tube_coder=dict(_delete_=True, type='SplineTubeCoder', max_frames=span, knot_interval=16)))

train_dataloader = dict(dataset=dict(clip_len=clip_len, frame_interval=frame_interval, train_stride=31))
val_dataloader = dict(dataset=dict(clip_len=clip_len, frame_interval=frame_interval, test_stride=62))
test_dataloader = val_dataloader
