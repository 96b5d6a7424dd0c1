from .launch import build_runner, default_work_dir

__all__ = ['build_runner', 'default_work_dir']
