from .inference import VideoFrames, inference_video, init_detector, tubes_to_json
from .inferencer import TubeInferencer
from .launch import (
    build_runner,
    default_work_dir,
    load_checkpoint_for_test,
    merge_test_cfg,
    parse_cfg_options,
    run_test,
    shutdown_distributed,
    trust_config_checkpoints,
)

__all__ = [
    'build_runner', 'default_work_dir', 'init_detector', 'inference_video', 'tubes_to_json', 'VideoFrames',
    'TubeInferencer',
    'shutdown_distributed', 'load_checkpoint_for_test', 'trust_config_checkpoints', 'merge_test_cfg',
    'run_test', 'parse_cfg_options'
]
