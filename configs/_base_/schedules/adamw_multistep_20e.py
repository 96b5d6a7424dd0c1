# Schedule of the I3D-R50 configs: 20 epochs, linear warm-up over 500 iterations, then the learning rate x0.1
# after epoch 15; validation every 4 epochs. Configs with another length override train_cfg (max_epochs,
# val_interval) and param_scheduler (its MultiStepLR end and milestones).
# optim_wrapper (AdamW, lr 5e-4, backbone lr x0.1, gradient clipping) and the checkpoint hook stay in each
# config: default_runtime.py defines optim_wrapper and default_hooks, and mmengine refuses a key defined in
# two files of one _base_ list.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_begin=1, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=20, milestones=[15], gamma=0.1)
]

# the learning rate above is for 8 GPUs x 8 clips; tools/train.py --auto-scale-lr scales it to the batch
# size used
auto_scale_lr = dict(enable=False, base_batch_size=64)
