# Runtime defaults shared by every CFAD config (mmaction2 conventions).
# custom_imports = dict(imports=['cfad_mm'], ...) is set by every dataset fragment in _base_/datasets/.
default_scope = 'mmaction'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook that writes through a temporary file + rename: a run killed during a save resumes
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, save_best='auto', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    # rendered test clips with the predicted tubes; tools/test.py --show-dir DIR enables it
    visualization=dict(type='TubeVisualizationHook', enable=False, score_thr=0.3))

# Reports unreadable samples skipped by datasets with on_bad_sample='skip' and skipped non-finite steps.
custom_hooks = [dict(type='ReliabilityHook')]

# A NaN/inf loss or gradient skips the optimizer step, logged with the batch's video ids;
# nonfinite='raise' stops the run instead, max_skips=N stops it after N skipped steps.
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper', nonfinite='skip', max_skips=None)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

# Training curves (losses, learning rate, metrics) go to every backend listed here. TensorBoard: add
# dict(type='TensorboardVisBackend') (needs the tensorboard package; events under
# <work_dir>/<timestamp>/vis_data), or pass --tensorboard to tools/train.py, then:
#   tensorboard --logdir work_dirs
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
