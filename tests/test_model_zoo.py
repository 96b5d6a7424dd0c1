"""model-index.yml / configs/cfad/metafile.yml: OpenMMLab model-index format, every config listed, no invented
numbers (entries to be trained have no results), the synthetic results are those of docs/results.md."""
import glob
import os.path as osp

import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_models():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    collections, models = [], []
    for path in index['Import']:
        with open(osp.join(REPO, path)) as f:
            meta = yaml.safe_load(f)
        collections += meta['Collections']
        models += meta['Models']
    return collections, models


def test_every_config_is_listed_once_with_the_required_fields():
    collections, models = load_models()
    names = {c['Name'] for c in collections}
    assert names == {'CFAD'}
    configs = sorted(m['Config'] for m in models)
    assert configs == sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs/cfad/*.py')))
    for m in models:
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
        assert m['In Collection'] in names
        assert osp.isfile(osp.join(REPO, m['Config']))
        for key in ('Architecture', 'Training Data', 'Batch Size', 'Epochs', 'Status'):
            assert key in m['Metadata'], (m['Name'], key)


def test_to_be_trained_entries_have_no_numbers_and_results_match_the_docs():
    _, models = load_models()
    with open(osp.join(REPO, 'docs/results.md')) as f:
        results_md = f.read()
    trained = [m for m in models if m['Metadata']['Status'] == 'trained']
    assert [m['Name'] for m in trained] == ['cfad_r3d-18-tiny_synthetic']
    for m in models:
        if m['Metadata']['Status'] == 'to be trained':
            assert 'Results' not in m and 'Weights' not in m, m['Name']
        else:
            assert m['Metadata']['Status'] == 'trained'
            metrics = m['Results'][0]['Metrics']
            assert set(metrics) == {'frame-mAP@0.5', 'video-mAP@0.2', 'video-mAP@0.5', 'video-mAP@0.75',
                                    'video-mAP@0.5:0.95'}
            row = ' | '.join(f'{metrics[k]:.4f}' for k in ('frame-mAP@0.5', 'video-mAP@0.2', 'video-mAP@0.5',
                                                           'video-mAP@0.75', 'video-mAP@0.5:0.95'))
            assert row in results_md, f'{m["Name"]}: {row} is not a row of docs/results.md'


def test_readme_synthetic_row_is_the_metafile_entry():
    """The README's synthetic model-zoo row is written with the metafile numbers (synthetic_results.py
    --update-zoo): the two must not drift apart."""
    _, models = load_models()
    metrics = [m for m in models if m['Metadata']['Status'] == 'trained'][0]['Results'][0]['Metrics']
    with open(osp.join(REPO, 'README.md')) as f:
        readme = f.read()
    block = readme.split('<!-- synthetic-zoo:start -->')[1].split('<!-- synthetic-zoo:end -->')[0]
    assert f"| {metrics['frame-mAP@0.5']:.3f} | {metrics['video-mAP@0.5']:.3f} |" in block
