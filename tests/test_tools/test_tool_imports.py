"""No file of tools/ imports another file of tools/: what tools share lives in the library (cfad_mm).

Importing a tool module by name needs ``sys.path`` hacks, and ``import test`` even shadows the standard
library's ``test`` package. The shared pieces (``default_input_shape``, ``random_clip``, the test runner, the
evaluation settings) are checked here to behave as the tool code they replace.
"""
import argparse
import ast
import glob
import os.path as osp

import pytest
from mmengine.config import Config, DictAction
from tool_scripts import load_tool

import cfad_mm  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
TOOL_FILES = sorted(glob.glob(osp.join(TOOLS, '**', '*.py'), recursive=True))
TOOL_MODULES = {osp.splitext(osp.basename(f))[0] for f in TOOL_FILES}
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')


def imported_modules(path):
    """``(line, module)`` of every absolute import of the file (top-level name), and of relative imports."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import can only reach files of tools/
                found.append((node.lineno, '.' * node.level + (node.module or '')))
            else:
                found.append((node.lineno, node.module))
    return found


def test_tool_files_are_found():
    assert {'test', 'train', 'demo', 'export_onnx', 'benchmark', 'eval_results'} <= TOOL_MODULES


def test_no_tool_imports_another_tool():
    bad = []
    for path in TOOL_FILES:
        for lineno, module in imported_modules(path):
            if module.startswith('.') or module.split('.')[0] in TOOL_MODULES:
                bad.append(f'{osp.relpath(path, REPO)}:{lineno}: imports {module!r}')
    assert not bad, 'tools/ files import other tools/ files (move the shared code into cfad_mm):\n' + \
        '\n'.join(bad)


def test_the_check_sees_each_import_form(tmp_path):
    src = tmp_path / 'x.py'
    src.write_text('import os, test as t\nfrom export_onnx import f\nfrom . import demo\n'
                   'def g():\n    import eval_results.sub\n')
    mods = [m for _, m in imported_modules(str(src))]
    assert sorted(mods) == sorted(['os', 'test', 'export_onnx', '.', 'eval_results.sub'])


def test_default_input_shape():
    from cfad_mm.apis.export import default_input_shape
    cfg = Config.fromfile(CONFIG)
    n, c, t, h, w = default_input_shape(cfg)
    assert (n, c) == (1, 3) and t == cfg.test_dataloader.dataset.clip_len
    resize = dict(type='TubeResize', scale=(-1, 120))
    ds = dict(clip_len=8, pipeline=[resize])
    assert default_input_shape(dict(test_dataloader=dict(dataset=ds))) == (1, 3, 8, 120, 160)
    resize.update(scale=(200, 100), keep_ratio=False)
    assert default_input_shape(dict(test_dataloader=dict(dataset=ds))) == (1, 3, 8, 100, 200)
    assert default_input_shape(dict()) == (1, 3, 16, 224, 299)


def test_random_clip_is_seeded_and_normalised():
    import torch

    from cfad_mm.apis import init_detector
    from cfad_mm.apis.export import random_clip
    model = init_detector(CONFIG)
    a = random_clip(model, (2, 3, 4, 8, 10), seed=3)
    assert a.shape == (2, 3, 4, 8, 10) and a.dtype == torch.float32
    assert torch.equal(a, random_clip(model, (2, 3, 4, 8, 10), seed=3))
    assert not torch.equal(a, random_clip(model, (2, 3, 4, 8, 10), seed=4))
    g = torch.Generator().manual_seed(3)
    raw = torch.randint(0, 256, (3, 4, 8, 10), generator=g, dtype=torch.uint8).float()
    pre = model.data_preprocessor
    expected = (raw - pre.mean.view(3, 1, 1, 1)) / pre.std.view(3, 1, 1, 1)
    assert torch.allclose(a[0], expected, atol=1e-5)


def test_parse_cfg_options_equals_dict_action():
    from cfad_mm.apis import parse_cfg_options
    opts = ['a.b=1', 'c=[1,2]', 'd=x', 'e.f=None', 'g=0.5']
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    assert parse_cfg_options(opts) == parser.parse_args(['--cfg-options'] + opts).cfg_options
    assert parse_cfg_options(None) == {} and parse_cfg_options([]) == {}
    assert parse_cfg_options({'a': 1}) == {'a': 1}


@pytest.mark.parametrize('argv', [
    [],
    ['--work-dir', 'wd', '--dump', 'r.pkl'],
    ['--show-dir', 'vis', '--interval', '3', '--wait-time', '0.5', '--cfg-options', 'model.refine=False'],
    ['--show', '--cfg-options', 'test_evaluator.link_iou=0.3', 'work_dir=elsewhere', '--dump', 'r.pickle'],
])
def test_tools_test_merge_args_is_the_library_merge(argv):
    """tools/test.py's options merge into the config as before the move (merge_test_cfg is its body)."""
    from cfad_mm.apis import merge_test_cfg
    from cfad_mm.apis.launch import default_work_dir
    tool = load_tool('tools/test.py', 'cfad_test_tool')
    args = tool.parse_args([CONFIG, 'ckpt.pth'] + argv)
    cfg = tool.merge_args(Config.fromfile(CONFIG), args)
    direct = merge_test_cfg(Config.fromfile(CONFIG), CONFIG, work_dir=args.work_dir,
                            cfg_options=args.cfg_options, dump=args.dump, show=args.show,
                            show_dir=args.show_dir, interval=args.interval, wait_time=args.wait_time)
    assert cfg.to_dict() == direct.to_dict()
    assert cfg.load_from is None and cfg.resume is False
    assert cfg.work_dir == (args.work_dir or (args.cfg_options or {}).get('work_dir')
                            or default_work_dir(CONFIG))
    if args.dump:
        assert cfg.test_evaluator[-1] == dict(type='DumpResults', out_file_path=args.dump)
    if args.show or args.show_dir:
        vis = cfg.default_hooks.visualization
        assert vis.enable and vis.out_dir == args.show_dir and vis.interval == args.interval


def test_merge_test_cfg_errors():
    from cfad_mm.apis import merge_test_cfg
    with pytest.raises(ValueError, match='--dump must name a .pkl file'):
        merge_test_cfg(Config.fromfile(CONFIG), CONFIG, dump='r.json')
    cfg = Config.fromfile(CONFIG)
    cfg.default_hooks.visualization = dict(type='VisualizationHook')
    with pytest.raises(ValueError, match='TubeVisualizationHook'):
        merge_test_cfg(cfg, CONFIG, show_dir='vis')


def test_run_test_missing_checkpoint_is_a_one_line_error(tmp_path):
    from cfad_mm.apis import run_test
    with pytest.raises(SystemExit, match=r'^error: checkpoint not found: .*missing\.pth'):
        run_test(CONFIG, str(tmp_path / 'missing.pth'), work_dir=str(tmp_path))


def test_eval_settings_in_the_library(tmp_path):
    from cfad_mm.evaluation.predictions import eval_settings, optional_float
    assert optional_float('None') is None and optional_float('0.25') == 0.25
    args = argparse.Namespace(ann_file=None, config=CONFIG, link_iou=0.3)
    ann_file, settings = eval_settings(args)
    metric = Config.fromfile(CONFIG).test_evaluator
    assert ann_file == metric.ann_file and settings['link_iou'] == 0.3
    with pytest.raises(SystemExit, match='^error: no annotation file'):
        eval_settings(argparse.Namespace(ann_file=None, config=None))
