import numpy as np
import pytest

from cfad_mm.evaluation.functional import descending_score_order, greedy_match, group_ranks, grouped_box_nms
from cfad_mm.structures.tube_ops import box_nms


@pytest.mark.parametrize('plus_one', [False, True])
def test_grouped_box_nms_equals_box_nms_per_group(plus_one):
    rng = np.random.default_rng(3)
    n = 400
    groups = rng.integers(0, 37, n)
    xy = rng.uniform(0, 50, (n, 2))
    wh = rng.uniform(2, 30, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = np.round(rng.uniform(0, 1, n), 1)  # many exact ties
    keep = grouped_box_nms(boxes, scores, groups, 0.3, plus_one)
    expected = np.zeros(n, dtype=bool)
    for g in np.unique(groups):
        idx = np.nonzero(groups == g)[0]
        expected[idx[box_nms(boxes[idx], scores[idx], 0.3, plus_one)]] = True
    assert keep.sum() < n  # something was suppressed
    np.testing.assert_array_equal(keep, expected)


def test_grouped_box_nms_hand_made():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    scores = np.array([0.5, 0.9, 0.8, 0.1])
    # group 0: boxes 0, 1, 3; group 1: box 2 (identical to box 0 but another group)
    keep = grouped_box_nms(boxes, scores, np.array([0, 0, 1, 0]), 0.3)
    assert keep.tolist() == [False, True, True, True]
    assert grouped_box_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.3).shape == (0, )
    with pytest.raises(ValueError, match='same length'):
        grouped_box_nms(boxes, scores[:2], np.zeros(4, int), 0.3)


def test_descending_score_order_is_stable():
    assert descending_score_order(np.array([0.5, 0.9, 0.5, 0.9])).tolist() == [1, 3, 0, 2]
    assert descending_score_order(np.array([0.5, 0.5, 0.5]), np.array([2, 0, 1])).tolist() == [1, 2, 0]


def test_group_ranks():
    groups = np.array([5, 7, 5, 5, 7])
    order = np.array([3, 1, 0, 4, 2])
    assert group_ranks(groups, order).tolist() == [1, 0, 2, 0, 1]


def test_greedy_match_remaining_vs_voc():
    # one group with two GT; det 0 (first) overlaps GT0 0.9 / GT1 0.6, det 1 overlaps GT0 0.8 / GT1 0.55
    det_ious = np.array([[0.9, 0.6], [0.8, 0.55], [0.0, 0.0]])
    groups = np.array([0, 0, -1])
    gt_valid = np.ones((1, 2), dtype=bool)
    order = np.array([0, 1, 2])
    # ACT: det 1 takes the remaining GT1 (0.55 >= 0.5)
    assert greedy_match(order, groups, det_ious, gt_valid, 0.5, 'remaining').tolist() == [True, True, False]
    # VOC: det 1's best GT (GT0) is taken -> duplicate -> FP
    assert greedy_match(order, groups, det_ious, gt_valid, 0.5, 'voc').tolist() == [True, False, False]
    # at 0.6 the remaining GT1 (0.55) is too far
    assert greedy_match(order, groups, det_ious, gt_valid, 0.6, 'remaining').tolist() == [True, False, False]
    # visiting det 1 first: it takes GT0, then det 0 takes GT1 (0.6)
    assert greedy_match(np.array([1, 0, 2]), groups, det_ious, gt_valid, 0.5).tolist() == [True, True, False]


def test_greedy_match_padding_and_errors():
    det_ious = np.array([[0.7, 0.9]])
    gt_valid = np.array([[True, False]])  # slot 1 is padding: never matched
    assert greedy_match(np.array([0]), np.array([0]), det_ious, gt_valid, 0.8).tolist() == [False]
    with pytest.raises(ValueError, match='matching must be'):
        greedy_match(np.array([0]), np.array([0]), det_ious, gt_valid, 0.5, 'coco')
    with pytest.raises(ValueError, match='det_ious must have shape'):
        greedy_match(np.array([0]), np.array([0]), np.zeros((1, 3)), gt_valid, 0.5)
