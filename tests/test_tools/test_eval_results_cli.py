"""tools/test.py --dump, then tools/analysis/eval_results.py --config on the real dump: the same numbers."""
import os.path as osp
import pickle
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))


def test_offline_evaluation_of_a_real_dump_equals_tools_test(tiny_synth, tmp_path, capsys):
    import eval_results
    import test as test_tool

    from cfad_mm.apis import init_detector
    from cfad_mm.evaluation import DumpUnpickler
    root, ann = tiny_synth
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'untrained.pth')
    torch.save({'state_dict': init_detector(CONFIG).state_dict(), 'meta': {}}, ckpt)
    opts = [f'test_dataloader.dataset.ann_file={ann}',
            f'test_dataloader.dataset.data_prefix.video={root}/videos',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            'test_dataloader.dataset.pipeline.2.scale=(-1,48)', f'test_evaluator.ann_file={ann}',
            'model.test_cfg.score_thr=0.0']
    dump = str(tmp_path / 'results.pkl')
    online = test_tool.main([CONFIG, ckpt, '--work-dir', str(tmp_path / 'work'), '--dump', dump,
                             '--cfg-options'] + opts)
    # the real dump (with the metainfo of the test pipeline) passes the allow-list
    with open(dump, 'rb') as f:
        samples = DumpUnpickler(f).load()
    with open(dump, 'rb') as f:
        plain = pickle.load(f)
    assert len(samples) == len(plain) > 0 and sorted(samples[0]) == sorted(plain[0])
    report = eval_results.main([dump, ann, '--config', CONFIG])
    assert report['settings']['link_iou'] == 0.3  # the tiny config's test_evaluator, not TubeMetric's 0.5
    for key, value in report['metrics'].items():
        assert online[f'tube/{key}'] == pytest.approx(value, abs=1e-12), key
