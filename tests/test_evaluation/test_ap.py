import numpy as np
import pytest

from cfad_mm.evaluation.functional import (
    act_pr_to_ap,
    average_precision,
    get_protocol,
    per_class_ap,
    pr_curve,
    subsample_pr,
    voc_pr_to_ap,
)


def test_pr_curve_act_starts_at_recall0_precision1():
    # detections by descending score: TP, FP, TP; 4 positives
    precision, recall = pr_curve(np.array([True, False, True]), 4, 'act')
    np.testing.assert_allclose(precision, [1, 1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(recall, [0, 0.25, 0.25, 0.5])


def test_pr_curve_voc_has_no_start_point():
    precision, recall = pr_curve(np.array([True, False, True]), 4, 'voc')
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(recall, [0.25, 0.25, 0.5])


def test_act_trapezoid_on_hand_made_curve():
    precision = np.array([1, 1, 1 / 2, 2 / 3])
    recall = np.array([0, 0.25, 0.25, 0.5])
    # 0.25 * (1 + 1) / 2 + 0 * ... + 0.25 * (1/2 + 2/3) / 2 = 0.25 + 0.1458333
    assert act_pr_to_ap(precision, recall) == pytest.approx(0.25 + 0.25 * (0.5 + 2 / 3) / 2)
    assert average_precision(precision, recall, 'act') == pytest.approx(0.3958333333)


def test_act_has_no_precision_envelope_while_voc_has():
    # TP, FP, TP with 2 positives: ACT integrates the dip, VOC the envelope
    p_act, r_act = pr_curve(np.array([True, False, True]), 2, 'act')
    assert act_pr_to_ap(p_act, r_act) == pytest.approx(0.5 * 1 + 0.5 * (0.5 + 2 / 3) / 2)
    p_voc, r_voc = pr_curve(np.array([True, False, True]), 2, 'voc')
    assert voc_pr_to_ap(p_voc, r_voc) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_voc_all_point_on_hand_made_curve():
    # recall steps 0 -> .25 (envelope 1), .25 -> .5 (envelope 2/3), .5 -> 1 (sentinel precision 0)
    assert voc_pr_to_ap([1, 0.5, 2 / 3], [0.25, 0.25, 0.5]) == pytest.approx(0.25 + 0.25 * 2 / 3)


def test_empty_and_perfect_curves():
    assert act_pr_to_ap(*pr_curve(np.zeros(0, bool), 3, 'act')) == 0.0
    assert voc_pr_to_ap(*pr_curve(np.zeros(0, bool), 3, 'voc')) == 0.0
    assert act_pr_to_ap(*pr_curve(np.ones(3, bool), 3, 'act')) == pytest.approx(1.0)
    assert voc_pr_to_ap(*pr_curve(np.ones(3, bool), 3, 'voc')) == pytest.approx(1.0)


def test_errors():
    with pytest.raises(ValueError, match='num_gt must be > 0'):
        pr_curve(np.ones(2, bool), 0)
    with pytest.raises(ValueError, match='same length'):
        act_pr_to_ap(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match='protocol must be one of'):
        get_protocol('coco')
    with pytest.raises(ValueError, match='max_points'):
        subsample_pr(np.ones(3), np.ones(3), 1)


def test_per_class_ap_skips_classes_without_gt():
    order = np.array([0, 1, 2])
    labels = np.array([0, 2, 0])
    tp = np.array([True, False, False])
    res = per_class_ap(order, labels, tp, np.array([1, 0, 0]), 'act')
    assert res['ap'][0] == pytest.approx(1.0)
    assert np.isnan(res['ap'][1]) and np.isnan(res['ap'][2])
    assert res['evaluated'].tolist() == [True, False, False]
    assert res['num_dets'].tolist() == [2, 0, 1]
    assert res['mAP'] == pytest.approx(1.0)


def test_subsample_pr_keeps_ends():
    p, r = subsample_pr(np.linspace(1, 0, 5000), np.linspace(0, 1, 5000), 100)
    assert len(p) == 100 and p[0] == 1.0 and r[-1] == 1.0
    p, r = subsample_pr(np.array([1.0, 0.5]), np.array([0.0, 0.5]), 100)
    assert p == [1.0, 0.5] and r == [0.0, 0.5]
