"""Stage reach: the best tube of a GT tube and the static reference by hand, the summary, the stages of a
long-window CFAD with an actor head, and tools/analysis/stage_reach.py on the tiny synthetic set."""
import json
import os.path as osp
import sys

import pytest
import torch
from mmaction.registry import MODELS
from tool_scripts import load_tool

import cfad_mm  # noqa: F401
from cfad_mm.analysis.stage_reach import (
    best_tube_frame_iou,
    coder_fit_frame_iou,
    format_class_reach_table,
    format_reach_table,
    interpolated_frame_iou,
    key_box_frame_iou,
    key_ceiling_frame_iou,
    peak_frame_iou,
    static_frame_iou,
    summarize_reach,
    tracker_ceiling_frame_iou,
    window_stage_reach,
)
from cfad_mm.models.utils import feature_step_frames
from cfad_mm.structures.tube_ops import box_iou_aligned

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))


def box(x, y=0.0, side=10.0):
    return torch.tensor([x, y, x + side, y + side])


def test_best_tube_is_the_one_of_highest_mean_iou_on_the_gt_frames():
    gt = torch.stack([box(0.0)] * 6)
    gt_mask = torch.tensor([False, True, True, True, True, False])
    exact_short = torch.stack([box(0.0)] * 6)  # exact, but only frames 1-2 in its extent: mean 0.5
    shifted = torch.stack([box(5.0)] * 6)  # half a box off on every frame: IoU 50 / 150 = 1/3
    masks = torch.tensor([[False, True, True, False, False, False], [True] * 6])
    iou = best_tube_frame_iou(torch.stack([exact_short, shifted]), masks, gt, gt_mask)
    assert iou.tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0])
    far = torch.stack([box(50.0)] * 6)[None]  # a better tube than none: IoU 0 everywhere
    assert best_tube_frame_iou(far, torch.ones(1, 6, dtype=torch.bool), gt, gt_mask).tolist() == [0.0] * 4
    assert best_tube_frame_iou(torch.zeros(0, 6, 4), torch.zeros(0, 6, dtype=torch.bool), gt,
                               gt_mask).tolist() == [0.0] * 4


def test_static_reference_holds_the_middle_annotated_box():
    # 10 px boxes moving 5 px per frame; annotated frames 0..4, the middle one is frame 2
    gt = torch.stack([box(5.0 * t) for t in range(7)])
    mask = torch.tensor([True] * 5 + [False] * 2)
    assert static_frame_iou(gt, mask).tolist() == pytest.approx([0.0, 1 / 3, 1.0, 1 / 3, 0.0])


def test_interpolated_ceiling_uses_the_annotated_known_frames_and_holds_outside_them():
    # 10 px boxes moving 5 px per frame over frames 0..6, all annotated
    gt = torch.stack([box(5.0 * t) for t in range(7)])
    mask = torch.ones(7, dtype=torch.bool)
    # known at 0 and 4: exact in between (linear motion), held at frame 4's box after it (5 and 10 px off)
    assert interpolated_frame_iou(gt, mask, torch.tensor([4, 0])).tolist() == pytest.approx(
        [1, 1, 1, 1, 1, 1 / 3, 0])
    # a known frame that is not annotated is not used: known 0 and 6, but 6 unannotated -> frame 0 held
    mask6 = torch.tensor([True] * 6 + [False])
    assert interpolated_frame_iou(gt, mask6, torch.tensor([0, 6])).tolist() == pytest.approx(
        [1, 1 / 3, 0, 0, 0, 0])
    # unsorted and repeated known frames are the same known frames
    assert interpolated_frame_iou(gt, mask, torch.tensor([4, 0, 4, 0])).tolist() == pytest.approx(
        [1, 1, 1, 1, 1, 1 / 3, 0])
    # none annotated: the middle annotated box held, as the static reference
    mask_mid = torch.tensor([False, True, True, True, False, False, False])
    assert interpolated_frame_iou(gt, mask_mid, torch.tensor([0, 5])).tolist() == pytest.approx(
        static_frame_iou(gt, mask_mid).tolist())
    # a turn between two known frames is lost: out and back (0, 5, 10, 5, 0) known at 0 and 4 only
    turn = torch.stack([box(x) for x in (0.0, 5.0, 10.0, 5.0, 0.0)])
    assert interpolated_frame_iou(turn, torch.ones(5, dtype=torch.bool), torch.tensor([0, 4])).tolist() == \
        pytest.approx([1, 1 / 3, 0, 1 / 3, 1])


def test_coder_fit_ceiling_is_exact_in_the_coders_space_and_not_outside_it():
    from mmaction.registry import TASK_UTILS
    coder = TASK_UTILS.build(dict(type='PolyTubeCoder', degree=1))
    t = torch.arange(12, dtype=torch.float32)
    moving = torch.stack([torch.stack([box(20 + 3.0 * f, 30.0, 12.0) for f in t])])  # linear motion
    there_and_back = torch.stack([torch.stack([box(20 + 30.0 - 5.0 * abs(f - 6), 30.0, 12.0) for f in t])])
    tubes = torch.cat([moving, there_and_back, moving])
    masks = torch.ones(3, 12, dtype=torch.bool)
    masks[1, :2] = False
    masks[2] = False  # no annotated frame: skipped
    ious = coder_fit_frame_iou(coder, tubes, masks, (120, 160))
    assert len(ious) == 2 and [len(i) for i in ious] == [12, 10]
    assert ious[0].tolist() == pytest.approx([1.0] * 12, abs=1e-4)  # a line is a degree-1 trajectory
    assert float(ious[1].mean()) < 0.6  # a turn is not


def test_peak_reach_takes_the_best_peak_of_the_clip_and_step_on_annotated_step_frames():
    gt = torch.stack([box(0.0)] * 9)
    gt_mask = torch.tensor([True] * 7 + [False] * 2)
    step_frames = torch.tensor([1, 4, 7])  # step 2 is not annotated
    where = torch.tensor([[0, 0], [0, 0], [1, 1], [0, 2]])
    boxes = torch.stack([box(5.0), box(0.0, 2.0), box(0.0), box(0.0)])
    # step 0: the better of 1/3 and 80/120; step 1: its only peak is another clip's -> 0
    assert peak_frame_iou(where, boxes, step_frames, 0, gt, gt_mask).tolist() == pytest.approx([2 / 3, 0.0])
    assert peak_frame_iou(where, boxes, step_frames, 1, gt, gt_mask).tolist() == pytest.approx([0.0, 1.0])


def test_tracker_ceiling_links_perfect_peaks_and_breaks_at_a_jump():
    """Map frames 0, 2, 4, 6 of an 8-frame span, 8 px cells. A (16 px boxes) walks 1 cell per map: one track,
    IoU 1 at its 4 frames. B stands at cell x 12.5 at frames 0 and 2, then jumps 10 cells (beyond the gate of
    3 cells) at frame 4, where it ends: its best single track keeps frames 0 and 2 only, unless the tracker
    has B's displacements."""
    from mmaction.registry import TASK_UTILS
    tracker = TASK_UTILS.build(dict(type='PeakTracker', gate=3.0))
    tubes, masks = torch.zeros(2, 8, 4), torch.zeros(2, 8, dtype=torch.bool)
    for f in (0, 2, 4, 6):
        cx = 20.0 + 4 * f
        tubes[0, f] = torch.tensor([cx - 8, 12, cx + 8, 28])
        masks[0, f] = True
    for f, (cx, cy) in {0: (100.0, 20.0), 2: (100.0, 20.0), 4: (20.0, 70.0)}.items():
        tubes[1, f] = torch.tensor([cx - 8, cy - 8, cx + 8, cy + 8])
        masks[1, f] = True
    ious = tracker_ceiling_frame_iou(tracker, tubes, masks, torch.tensor([0, 2, 4, 6]),
                                     torch.tensor([0.125, 0.125]))
    assert [i.tolist() for i in ious] == [[1.0] * 4, [1.0, 1.0, 0.0]]
    # with perfect displacements the track follows B's jump too: each peak is predicted where it goes
    ious = tracker_ceiling_frame_iou(tracker, tubes, masks, torch.tensor([0, 2, 4, 6]),
                                     torch.tensor([0.125, 0.125]), gt_motion=True)
    assert [i.tolist() for i in ious] == [[1.0] * 4, [1.0] * 3]


def two_movers():
    """``(tubes (2, 12, 4), masks (2, 12))``: A (8 x 8 px) at frames 0, 4, 8 with centre x 12 -> 28 -> 44,
    y 12; B (8 x 8 px) at frames 4 and 8 with centre x 52, y 36 -> 28."""
    tubes, masks = torch.zeros(2, 12, 4), torch.zeros(2, 12, dtype=torch.bool)
    for f, cx in ((0, 12.0), (4, 28.0), (8, 44.0)):
        tubes[0, f] = torch.tensor([cx - 4, 8.0, cx + 4, 16.0])
        masks[0, f] = True
    for f, cy in ((4, 36.0), (8, 28.0)):
        tubes[1, f] = torch.tensor([48.0, cy - 4, 56.0, cy + 4])
        masks[1, f] = True
    return tubes, masks


def test_oracle_motion_map_puts_each_gt_displacement_around_its_centre():
    """Map frames 0, 4, 8 of a 12-frame span, 8 px cells, a 6 x 8 map. A (centre cell x 1.5 -> 3.5 -> 5.5,
    y 1.5) moves 2 cells per map; B (centre x 6.5, y 4.5) only at frames 4 and 8, moving up 1 cell. Cells
    within 2 of a centre get its displacements (to the map before, to the map after; the missing side
    mirrored at B's first map and at the window's ends), the others 0."""
    from cfad_mm.analysis.stage_reach import oracle_motion_map
    tubes, masks = two_movers()
    motion = oracle_motion_map(tubes, masks, torch.tensor([0, 4, 8]), torch.tensor([0.125, 0.125]), (6, 8))
    assert motion.shape == (3, 4, 6, 8)
    # A at map 1 (cell y 1, x 3): -2 cells in x to the map before, +2 to the map after
    assert motion[1, :, 1, 3].tolist() == [-2.0, 0.0, 2.0, 0.0]
    assert motion[0, :, 1, 1].tolist() == [-2.0, 0.0, 2.0, 0.0]  # first map: 'before' mirrored
    assert motion[2, :, 1, 5].tolist() == [-2.0, 0.0, 2.0, 0.0]  # last map: 'after' mirrored
    # B at map 1 (cell y 4, x 6): not annotated at map 0, so 'before' mirrors its move up to map 2
    assert motion[1, :, 4, 6].tolist() == [0.0, 1.0, 0.0, -1.0]
    assert motion[1, :, 1, 7].tolist() == [0.0] * 4  # 4 cells from A, 3.2 from B
    assert motion[0, :, 4, 6].tolist() == [0.0] * 4  # B is not there at map 0


def test_motion_errors_against_a_perfect_and_a_still_output():
    """The scene of the oracle test: A moves 2 cells per map (3 maps, 2 sides), B 1 cell (2 maps, 2 sides).
    The oracle map is read without error; an output of zeros is off by each GT displacement."""
    from cfad_mm.analysis.stage_reach import (
        format_motion_error_table,
        motion_errors,
        oracle_motion_map,
        summarize_motion_errors,
    )
    tubes, masks = two_movers()
    frames, cpp = torch.tensor([0, 4, 8]), torch.tensor([0.125, 0.125])
    perfect = motion_errors(oracle_motion_map(tubes, masks, frames, cpp, (6, 8)), tubes, masks, frames, cpp)
    assert perfect.shape == (10, 2) and perfect[:, 0].abs().max() == 0
    assert sorted(perfect[:, 1].tolist()) == [1.0] * 4 + [2.0] * 6
    still = motion_errors(torch.zeros(3, 4, 6, 8), tubes, masks, frames, cpp)
    assert torch.equal(still[:, 0], still[:, 1])
    summary = summarize_motion_errors([still[:4], still[4:]])
    assert summary['pairs'] == 10 and summary['gt_median'] == 2.0 and summary['error_median'] == 2.0
    assert summary['error_under_1'] == 0.0 and summary['zero_under_1'] == 0.0
    assert summarize_motion_errors([perfect])['error_under_1'] == 1.0
    assert summarize_motion_errors([]) is None
    assert '| error of the actor head\'s learned displacement | 10 | 2.00 | 2.00 | 0.000 |' in \
        format_motion_error_table(summary)


def test_summary_per_class_counts_the_frames_of_each_class():
    per_stage = {'coarse': [torch.tensor([0.6, 0.2]), torch.tensor([0.5]), torch.tensor([0.1, 0.9, 0.9])],
                 'fit_ceiling': [torch.tensor([1.0, 1.0]), torch.tensor([0.0]),
                                 torch.tensor([1.0, 0.4, 0.4])]}
    s = summarize_reach(per_stage, labels=[2, 0, 2])
    assert list(s) == ['fit_ceiling', 'coarse']
    assert s['coarse']['share_iou_05_per_class'] == {0: 1.0, 2: pytest.approx(3 / 5)}
    assert s['fit_ceiling']['share_iou_05_per_class'] == {0: 0.0, 2: pytest.approx(3 / 5)}
    table = format_class_reach_table(s, ['a', 'b', 'c'])
    assert table.splitlines()[0] == '| stage (share of GT frames at IoU >= 0.5) | a | c |'
    assert "| ceiling: the GT tube as a trajectory of the model's tube coder | 0.000 | 0.600 |" in table
    with pytest.raises(ValueError, match='2 labels for 3 GT tubes'):
        summarize_reach(per_stage, labels=[0, 1])
    with pytest.raises(ValueError, match='no per-class shares'):
        format_class_reach_table(summarize_reach(per_stage))


def test_summary_orders_the_stages_and_counts_frames():
    per_stage = {'refined_1': [torch.tensor([1.0, 0.4])], 'coarse': [torch.tensor([0.2, 0.6]),
                                                                     torch.tensor([0.5])],
                 'static': [torch.tensor([0.5, 0.5])], 'snapped': []}
    s = summarize_reach(per_stage)
    assert list(s) == ['static', 'coarse', 'snapped', 'refined_1']
    assert s['coarse'] == dict(gt_tubes=2, frames=3, mean_iou=pytest.approx(1.3 / 3),
                               share_iou_05=pytest.approx(2 / 3))
    assert s['snapped']['frames'] == 0
    table = format_reach_table(s)
    assert '| after refine pass 1 | 1 | 2 | 0.700 | 0.500 |' in table
    assert table.splitlines()[2].startswith('| reference: the GT box of the middle annotated frame, held |')


def test_a_long_window_cfad_reports_every_stage_for_every_gt_tube():
    sys.path.insert(0, osp.join(TESTS, 'test_models'))
    from test_long_span import S, long_span_cfg, long_span_sample
    torch.manual_seed(0)
    cfg = long_span_cfg(dict(type='SplineTubeCoder', max_frames=S, knot_interval=25))
    cfg['roi_head']['actor_head'] = dict(type='StepActorHead', feat_channels=8,
                                         tracker=dict(type='PeakTracker'))
    cfg['test_cfg'] = dict(refine_iters=2)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    clip, ds = long_span_sample()
    data = model.data_preprocessor(dict(inputs=[clip], data_samples=[ds]), False)
    labels = []
    out = window_stage_reach(model, data['inputs'], data['data_samples'], labels)
    num_gt = int(ds.gt_instances.tube_masks.any(1).sum())
    assert set(out) == {'static', 'fit_ceiling', 'step_ceiling', 'input_ceiling', 'actor_peaks', 'coarse',
                        'snapped', 'snapped_map_frames', 'snapped_any_extent', 'tracks', 'tracks_gt_motion',
                        'tracker_ceiling', 'tracker_ceiling_gt_motion', 'key_ceiling', 'key_boxes_in',
                        'key_boxes_refined', 'refined_1', 'refined_2'}
    # no motion output: no displacement errors; with one, a row per GT centre and side at every map
    motion = []
    window_stage_reach(model, data['inputs'], data['data_samples'], motion=motion)
    assert motion == []
    cfg['roi_head']['actor_head'].update(follow=True, motion=True)
    with_motion = MODELS.build(cfg)
    with_motion.init_weights()
    with_motion.eval()
    window_stage_reach(with_motion, data['inputs'], data['data_samples'], motion=motion)
    t_feat = model.extract_feat(data['inputs']).shape[2]
    maps = feature_step_frames(t_feat, S / t_feat, S)  # the head's maps: one per feature step
    sides = 2 * sum(int(m[maps].sum()) for m in ds.gt_instances.tube_masks)
    assert len(motion) == 1 and motion[0].shape == (sides, 2) and sides > 0
    # the refine head's key boxes before and after, on the same frames
    assert [a.shape for a in out['key_boxes_in']] == [b.shape for b in out['key_boxes_refined']]
    assert sum(a.numel() for a in out['key_boxes_in']) > 0
    # the best snapped tube with its extent ignored covers every GT frame at least as well on average
    for full, any_extent in zip(out['snapped'], out['snapped_any_extent']):
        assert float(any_extent.mean()) >= float(full.mean()) - 1e-6
    assert labels == [int(c) for c, m in zip(ds.gt_instances.labels, ds.gt_instances.tube_masks) if m.any()]
    # the ceilings at the frames of the model's feature steps and inputs (k > 1)
    t_in = data['inputs'].shape[2]
    k = (S - 1) // (t_in - 1)
    t_feat = model.extract_feat(data['inputs']).shape[2]
    gts = [(g.float(), m) for g, m in zip(ds.gt_instances.tubes, ds.gt_instances.tube_masks) if m.any()]
    for i, (g, m) in enumerate(gts):
        assert torch.equal(out['input_ceiling'][i], interpolated_frame_iou(g, m, torch.arange(t_in) * k))
        assert torch.equal(out['step_ceiling'][i],
                           interpolated_frame_iou(g, m, feature_step_frames(t_feat, S / t_feat, S)))
    # without the stages: the same reference and ceilings, nothing else
    only = window_stage_reach(model, data['inputs'], data['data_samples'], with_stages=False)
    assert set(only) == {'static', 'fit_ceiling', 'step_ceiling', 'input_ceiling', 'tracker_ceiling',
                         'tracker_ceiling_gt_motion'}
    for name in only:
        assert all(torch.equal(a, b) for a, b in zip(only[name], out[name])), name
    masks = [m for m in ds.gt_instances.tube_masks if m.any()]
    frames = [int(m.sum()) for m in masks]
    t_feat = model.extract_feat(data['inputs']).shape[2]
    steps = feature_step_frames(t_feat, S / t_feat, S)  # the actor bound counts the step frames only
    for name, ious in out.items():
        on_maps = name in ('actor_peaks', 'snapped_map_frames', 'tracks', 'tracks_gt_motion',
                           'tracker_ceiling', 'tracker_ceiling_gt_motion')
        expected = [int(m[steps].sum()) for m in masks] if on_maps else frames
        assert all(((i >= 0) & (i <= 1)).all() for i in ious)
        if name.startswith('key_boxes'):  # at most the key_selector's 3 keys, all at feature step frames
            most = [min(int(m[steps].sum()), 3) for m in masks]
            assert len(ious) == num_gt and all(len(i) <= n for i, n in zip(ious, most)), name
            continue
        assert len(ious) == num_gt and [len(i) for i in ious] == expected, name
        assert all(((i >= 0) & (i <= 1)).all() for i in ious)


def test_key_ceiling_refits_to_the_gt_at_the_key_frames_only():
    """A tube off the GT by 4 px; GT boxes at its key frames pull the re-fit towards the GT (a constant box is
    a trajectory of the coder; the prior of the re-fit keeps part of the offset away from the keys), no valid
    key leaves it where it was; no tube gives zeros."""
    sys.path.insert(0, osp.join(TESTS, 'test_models'))
    from test_long_span import S, long_span_cfg
    torch.manual_seed(0)
    model = MODELS.build(long_span_cfg(dict(type='SplineTubeCoder', max_frames=S, knot_interval=25)))
    img_shape = (64, 64)
    gt_mask = torch.zeros(S, dtype=torch.bool)
    gt_mask[10:50] = True
    gt_tube = torch.tensor([20., 20., 40., 40.]).expand(S, 4).clone()
    off = (gt_tube + torch.tensor([4., 0., 4., 0.]))[None]
    coeffs, extents = model.coder.encode(off, gt_mask[None], img_shape)
    before = box_iou_aligned(off[0, gt_mask], gt_tube[gt_mask])  # 16 x 20 / (2 x 400 - 320) = 2 / 3
    keys = torch.tensor([[15., 30., 45.]])
    none = key_ceiling_frame_iou(model, coeffs, extents, keys, torch.zeros(1, 3, dtype=torch.bool), gt_tube,
                                 gt_mask, img_shape)
    assert torch.allclose(none, before, atol=1e-3) and torch.allclose(before, torch.full_like(before, 2 / 3))
    perfect = key_ceiling_frame_iou(model, coeffs, extents, keys, torch.ones(1, 3, dtype=torch.bool), gt_tube,
                                    gt_mask, img_shape)
    # near the GT at the keys (frames 15, 30, 45 are the 6th, 21st and 36th annotated ones), better everywhere
    assert perfect.shape == (40,) and float(perfect[[5, 20, 35]].min()) > 0.93 and float(perfect[20]) > 0.99
    assert bool((perfect > before + 0.2).all())
    # keys where the GT is not annotated count as no key
    outside = key_ceiling_frame_iou(model, coeffs, extents, torch.tensor([[2., 5., 55.]]),
                                    torch.ones(1, 3, dtype=torch.bool), gt_tube, gt_mask, img_shape)
    assert torch.allclose(outside, before, atol=1e-3)
    empty = key_ceiling_frame_iou(model, coeffs[:0], extents[:0], keys[:0], keys[:0].bool(), gt_tube, gt_mask,
                                  img_shape)
    assert torch.equal(empty, torch.zeros(40))


def test_key_boxes_of_the_best_entering_tube():
    """The key boxes of the tube nearest the GT (tube 1; tube 0 is farther), at its valid key frames where the
    GT is annotated, before and after the refine head."""
    s = 10
    gt_mask = torch.zeros(s, dtype=torch.bool)
    gt_mask[2:8] = True
    gt_tube = torch.tensor([0., 0., 10., 10.]).expand(s, 4).clone()
    tubes = torch.stack([gt_tube + 5, gt_tube + torch.tensor([2., 0., 2., 0.])])  # IoU 1/7 and 2/3
    masks = torch.ones(2, s, dtype=torch.bool)
    key_frames = torch.tensor([[3., 4., 5.], [1., 3.6, 6.]])  # tube 1: frame 1 not annotated, 3.6 -> 4
    key_valid = torch.tensor([[True, True, True], [True, True, False]])  # tube 1: frame 6 not chosen
    key_in = torch.stack([tubes[0, :3], tubes[1, :3]])
    refined = key_in.clone()
    refined[1, 1] = gt_tube[4]  # the refine head puts the box at frame 4 on the GT
    before, after = key_box_frame_iou(tubes, masks, key_in, refined, key_frames, key_valid, gt_tube, gt_mask)
    assert torch.allclose(before, torch.tensor([2 / 3])) and torch.allclose(after, torch.tensor([1.0]))
    empty = key_box_frame_iou(tubes[:0], masks[:0], key_in[:0], refined[:0], key_frames[:0], key_valid[:0],
                              gt_tube, gt_mask)
    assert [e.numel() for e in empty] == [0, 0]
    # no entering tube overlaps the GT: none is its best tube, no key frame counted
    far = key_box_frame_iou(tubes + 50, masks, key_in, refined, key_frames, key_valid, gt_tube, gt_mask)
    assert [e.numel() for e in far] == [0, 0]


def test_tool_writes_its_table_json_and_doc_block(tiny_synth, tmp_path, capsys):
    sys.path.insert(0, osp.join(TESTS, 'test_tools'))
    from test_train_test_cli import data_options

    tool = load_tool('tools/analysis/stage_reach.py')
    root, ann = tiny_synth
    config = osp.join(osp.dirname(TESTS), 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
    opts = data_options(root, ann)
    from cfad_mm.apis import init_detector
    torch.manual_seed(0)
    model = init_detector(config)  # random weights
    model.init_weights()
    ckpt = str(tmp_path / 'random.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    doc = tmp_path / 'doc.md'
    doc.write_text('# results\n')
    tool.main([config, ckpt, '--max-windows', '1', '--batch-size', '2', '--json', str(tmp_path / 'r.json'),
               '--doc', str(doc), '--block', 'reach-test', '--title', 'a run, seed 0',
               '--cfg-options'] + opts)
    printed = capsys.readouterr().out
    assert '| reference: the GT box of the middle annotated frame, held |' in printed
    summary = json.loads((tmp_path / 'r.json').read_text())
    assert summary['windows'] == 1  # cut inside the first batch
    stages = summary['stages']
    assert list(stages) == ['static', 'fit_ceiling', 'step_ceiling', 'input_ceiling', 'coarse',
                            'key_boxes_in', 'key_boxes_refined', 'key_ceiling', 'refined_1',
                            'refined_2']  # two refine passes at test time
    key_rows = ('key_boxes_in', 'key_boxes_refined')
    assert len({s['frames'] for n, s in stages.items() if n not in key_rows}) == 1
    assert stages['static']['frames'] > 0
    assert stages['key_boxes_in']['frames'] == stages['key_boxes_refined']['frames'] > 0
    text = doc.read_text()
    assert text.startswith('# results\n') and '<!-- reach-test:start -->' in text
    assert 'tools/analysis/stage_reach.py' in text and '1 test windows' in text
    assert "--title 'a run, seed 0'" in text  # the command as written can be run again
    assert '## Reach of each stage: a run, seed 0' in text
    # windows of consecutive frames: every annotated frame is an input frame, so that ceiling is exact
    assert stages['input_ceiling']['share_iou_05'] == 1.0 and stages['input_ceiling']['mean_iou'] == 1.0
    assert 'Share of GT frames at IoU >= 0.5 per class of the GT tube' in printed
    # without a checkpoint: the reference and the ceilings only, the same numbers
    tool.main([config, '--max-windows', '1', '--batch-size', '2', '--json', str(tmp_path / 'c.json'),
               '--doc', str(doc), '--block', 'ceilings', '--cfg-options'] + opts)
    ceilings = json.loads((tmp_path / 'c.json').read_text())
    assert ceilings['checkpoint'] is None
    assert list(ceilings['stages']) == ['static', 'fit_ceiling', 'step_ceiling', 'input_ceiling']
    assert all(ceilings['stages'][k] == stages[k] for k in ceilings['stages'])
    assert 'no checkpoint: the reference and ceiling rows only' in doc.read_text()
