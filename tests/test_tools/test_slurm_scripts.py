"""tools/slurm_train.sh and tools/slurm_test.sh: the srun command line (a fake ``srun`` records its
arguments)."""
import os
import os.path as osp
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
CONFIG = 'configs/cfad/cfad_r3d-18-tiny_synthetic.py'


@pytest.fixture
def fake_srun(tmp_path):
    """A ``srun`` on PATH writing one argument per line (and its PYTHONPATH) to a file."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    record = tmp_path / 'srun_args.txt'
    srun = bin_dir / 'srun'
    srun.write_text(f'#!/usr/bin/env bash\necho "PYTHONPATH=$PYTHONPATH" > "{record}"\n'
                    f'printf "%s\\n" "$@" >> "{record}"\n')
    srun.chmod(0o755)

    def run(script, *args, **env):
        full_env = {k: v for k, v in os.environ.items() if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK',
                                                                     'SRUN_ARGS')}
        full_env.update(env, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
        proc = subprocess.run(['bash', osp.join(TOOLS, script), *args], env=full_env, capture_output=True,
                              text=True, timeout=60)
        lines = record.read_text().splitlines() if record.exists() else []
        return proc, lines

    return run


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_scripts_are_executable_and_parse(script):
    path = osp.join(TOOLS, script)
    assert os.access(path, os.X_OK)
    subprocess.run(['bash', '-n', path], check=True)
    with open(path) as f:
        assert 'Usage: ' in f.read()


def test_slurm_train_command_line(fake_srun):
    proc, lines = fake_srun('slurm_train.sh', 'dev', 'cfad_job', CONFIG, 'work_dirs/x', '--seed', '0',
                            '--cfg-options', 'train_cfg.max_epochs=2', GPUS='16',
                            SRUN_ARGS='--quotatype=auto -N 2')
    assert proc.returncode == 0, proc.stderr
    assert lines[0].startswith(f'PYTHONPATH={TOOLS}/..')
    assert lines[1:] == ['-p', 'dev', '--job-name=cfad_job', '--gres=gpu:8', '--ntasks=16',
                         '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
                         '--quotatype=auto', '-N', '2', 'python', '-u', osp.join(TOOLS, 'train.py'), CONFIG,
                         '--work-dir=work_dirs/x', '--launcher=slurm', '--seed', '0', '--cfg-options',
                         'train_cfg.max_epochs=2']


def test_slurm_test_command_line(fake_srun):
    proc, lines = fake_srun('slurm_test.sh', 'dev', 'cfad_test', CONFIG, 'ckpt dir/best.pth', '--work-dir',
                            'w', GPUS_PER_NODE='4', GPUS='4', CPUS_PER_TASK='2')
    assert proc.returncode == 0, proc.stderr
    assert lines[1:] == ['-p', 'dev', '--job-name=cfad_test', '--gres=gpu:4', '--ntasks=4',
                         '--ntasks-per-node=4', '--cpus-per-task=2', '--kill-on-bad-exit=1', 'python', '-u',
                         osp.join(TOOLS, 'test.py'), CONFIG, 'ckpt dir/best.pth', '--launcher=slurm',
                         '--work-dir', 'w']


def test_slurm_scripts_print_usage_without_arguments(fake_srun):
    for script in ('slurm_train.sh', 'slurm_test.sh'):
        proc, lines = fake_srun(script, 'dev', 'job')
        assert proc.returncode == 2 and 'Usage: ' in proc.stderr and not lines
