"""Every full config under configs/cfad/ loads, builds its model and runs a loss + predict step."""
import copy
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from test_cfad import moving_square_clip

import cfad_mm  # noqa: F401

CONFIGS = sorted(glob.glob(osp.join(osp.dirname(__file__), '..', '..', 'configs', 'cfad', '*.py')))
DefaultScope.get_instance('test_model_configs', scope_name='mmaction')


def test_the_required_configs_exist():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'cfad_r3d-18-tiny_synthetic.py' in names
    for ds in ('ucf101-24', 'jhmdb-21', 'ucfsports', 'multisports'):
        assert any(n.startswith('cfad_i3d-r50_') and n.endswith(f'_{ds}.py') for n in names), ds


def spread_over_span(ds, k):
    """The sample of :func:`moving_square_clip` with its T frames taken as every k-th frame of a span of
    ``(T - 1) * k + 1`` frames: the GT boxes interpolated linearly in between, frame numbers and validity of
    the span."""
    gt = ds.gt_instances
    t = gt.tubes.shape[1]
    span = (t - 1) * k + 1
    times = torch.arange(span, dtype=torch.float32) / k
    lo = times.floor().long().clamp(max=t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (times - lo.float())[None, :, None]
    tubes = gt.tubes[:, lo] * (1 - w) + gt.tubes[:, hi] * w
    masks = gt.tube_masks[:, lo] & gt.tube_masks[:, hi]
    out = copy.deepcopy(ds)
    out.gt_instances = InstanceData(tubes=tubes, tube_masks=masks, labels=gt.labels)
    out.set_metainfo(dict(frame_numbers=np.arange(1, span + 1), frame_valid=np.ones(span, bool),
                          frame_interval=k))
    return out


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(c) for c in CONFIGS])
def test_config_builds_and_steps(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmaction'
    assert cfg.custom_imports['imports'] == ['cfad_mm']
    assert cfg.val_evaluator['type'] == 'TubeMetric' and cfg.val_evaluator['ann_file'] == cfg.ann_file
    assert cfg.val_evaluator['split'] == cfg.train_dataloader.dataset.split
    num_classes = cfg.model.num_classes
    if 'i3d-r50' in path:
        # the I3D-R50 configs: pretrained weights from a local path via init_cfg, nothing downloaded
        assert cfg.model.backbone.init_cfg['type'] == 'Pretrained'
        assert cfg.model.backbone.depth == 50
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()  # the paper configs' Pretrained checkpoint is None here: warned, random init
    inputs, ds = moving_square_clip()
    ds.gt_instances.labels = torch.tensor([num_classes - 1])
    k = int(cfg.model.get('frame_interval', 1))
    if k > 1:  # a long-span config: the 8 input frames are every k-th of a span, the ground truth covers it
        assert cfg.test_dataloader.dataset.frame_interval == k
        assert cfg.train_dataloader.dataset.frame_interval == k
        ds = spread_over_span(ds, k)
    data = model.data_preprocessor(dict(inputs=[inputs], data_samples=[ds]), training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert 'loss_refine_cls' in ' '.join(losses) or any(k.startswith('loss_refine') for k in losses)
    model.eval()
    with torch.no_grad():
        out = model(**model.data_preprocessor(dict(inputs=[inputs], data_samples=[ds]), training=False),
                    mode='predict')
    pred = out[0].pred_instances
    assert pred.tubes.shape[1:] == ((inputs.shape[1] - 1) * k + 1, 4)
    assert (pred.labels < num_classes).all()


def test_i3d_backbone_loads_local_pretrained_weights(tmp_path):
    """The paper configs' backbone takes Kinetics weights from a local mmaction checkpoint (``backbone.``
    keys)."""
    path = next(c for c in CONFIGS if 'i3d-r50' in c)
    cfg = Config.fromfile(path)
    torch.manual_seed(1)
    donor = MODELS.build(cfg.model.backbone)
    ckpt = tmp_path / 'i3d_r50_kinetics400.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in donor.state_dict().items()},
                'meta': {}}, ckpt)
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    torch.manual_seed(2)
    model = MODELS.build(cfg.model)
    key = 'conv1.conv.weight'
    assert not torch.equal(model.backbone.state_dict()[key], donor.state_dict()[key])
    model.init_weights()
    for k, v in donor.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k


def test_backbone_pretrained_errors_name_the_file(tmp_path):
    path = next(c for c in CONFIGS if 'i3d-r50' in c)
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        MODELS.build(cfg.model).init_weights()
    wrong = tmp_path / 'other_model.pth'
    torch.save({'state_dict': {'backbone.fc.weight': torch.zeros(3, 3)}}, wrong)
    cfg.model.backbone.init_cfg.checkpoint = str(wrong)
    with pytest.raises(ValueError, match='other_model.pth.*holds no weight of the backbone'):
        MODELS.build(cfg.model).init_weights()
