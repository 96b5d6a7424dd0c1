"""Evaluation protocols: the conventions that differ between the codebases that report tube detection results.

Three protocols are offered so that numbers can be compared with published ones:

``'act'`` (default) -- the protocol of ACT (Kalogeiton et al., ICCV 2017, ``ACT.py`` /
    ``ACT_utils.py``), copied by MOC, and used by the papers reporting frame-mAP / video-mAP on UCF101-24,
    JHMDB-21 and UCFSports (CFAD included):

    * inclusive-pixel boxes: ``area = (x2 - x1 + 1) * (y2 - y1 + 1)``, overlaps likewise (``plus_one=True``),
      because the annotations index pixels (a box ``x1 = x2`` is one pixel wide);
    * greedy matching against the *remaining* ground truth: a detection takes the best-overlapping GT that no
      higher-scored detection took yet; a duplicate can therefore still match a second GT nearby;
    * the precision/recall curve starts at (recall 0, precision 1) and AP is the trapezoidal sum over the raw
      curve, ``sum((r[1:] - r[:-1]) * (p[1:] + p[:-1]) / 2)`` (ACT's ``pr_to_ap``), without precision
      envelope.

``'voc'`` -- the PASCAL-VOC style used by mmaction2's ``MultiSportsMetric`` (MultiSports' code):

    * continuous boxes ``area = (x2 - x1) * (y2 - y1)`` (``plus_one=False``);
    * a detection is compared with ALL ground truth of its group: it is a true positive when its best overlap
      is >= the threshold and that GT is not matched yet; otherwise (duplicate) a false positive;
    * AP is the VOC all-point interpolated area: the precision is made monotonically non-increasing (the
      "envelope") and integrated over the recall steps, with sentinels (recall 0 and 1, precision 0).

What is NOT changed by the protocol, on purpose: the temporal IoU counts frames inclusively
(``(min end - max start + 1) / (max end - min start + 1)``, the one definition of
:mod:`cfad_mm.structures.tube_ops`; MultiSports' own code omits the ``+ 1`` there), and the hard NMS before
matching (``nms_thr``, 0.3 by default in both; pass ``nms_thr=None`` to disable it as MultiSports does for
video tubes).

``'multisports'`` -- an exact reproduction of mmaction2 1.2.0's ``frameAP`` and ``videoAP``
    (``mmaction/evaluation/functional/multisports_utils.py``, used by ``MultiSportsMetric``) on the same frame
    detections and video tubes: everything of ``'voc'``, plus

    * no NMS inside frame-mAP / video-mAP (``nms_thr`` of :func:`.frame_map` / :func:`.video_map` is ignored;
      :func:`.evaluate_tubes` applies it to the detections before, as detector post-processing);
    * temporal IoU without ``+ 1``: ``(min end - max start) / (max end - min start)`` (frame numbers, so two
      tubes sharing one frame have temporal IoU 0, and two one-frame tubes on the same frame give 0 / 0 = NaN,
      never a true positive, as in mmaction2);
    * the six classes ``MULTISPORTS_SKIPPED_CLASSES`` are not evaluated (matched by name, as mmaction2 does);
    * per class, detections are ranked by ``np.argsort(-scores)`` over the class's detections in input order
      (numpy's default, unstable sort, as mmaction2), so that even exactly tied scores are visited in the same
      order as mmaction2 visits them when both get their input in the same order.

    Not reproduced: mmaction2's ``link_tubes`` (its ``Dataset.get_vid_dets`` takes every frame detection's
    score from the leftover loop variable ``frm_det``, i.e. the LAST row of the detection array, so all linked
    tubes get the same score and its video-mAP depends on the order of the detections). Our video tubes come
    from :func:`cfad_mm.evaluation.link_video_tubes` with their real scores (mean of their clip tubes).
"""
from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np

__all__ = ['EvalProtocol', 'PROTOCOLS', 'MULTISPORTS_SKIPPED_CLASSES', 'get_protocol', 'skipped_class_mask']


@dataclass(frozen=True)
class EvalProtocol:
    """The conventions of one evaluation protocol.

    Attributes:
        name (str): ``'act'``, ``'voc'`` or ``'multisports'``.
        plus_one (bool): Inclusive-pixel box areas and overlaps.
        matching (str): ``'remaining'`` (ACT: best among the GT not matched yet) or ``'voc'`` (best among all
            GT; a detection whose best GT is already matched is a false positive).
        ap_mode (str): ``'trapezoid'`` (ACT) or ``'voc'`` (all-point interpolation with precision envelope).
        pr_start_point (bool): Whether the PR curve starts with the point (recall 0, precision 1) (ACT).
        eval_nms (bool): Whether frame-mAP / video-mAP apply their hard NMS (``nms_thr``) before matching.
        temporal_plus_one (bool): Temporal IoU counts frames inclusively (``+ 1``, ACT and ours) or not
            (mmaction2's ``iou3dt_voc``).
        skip_classes (tuple[str]): Class names never evaluated (as classes without ground truth).
        tie_order (str): ``'stable'`` (descending score, ties in input order, one global sort) or ``'numpy'``
            (per class ``np.argsort(-scores)`` of the class's detections in input order, as mmaction2).
    """
    name: str
    plus_one: bool
    matching: str
    ap_mode: str
    pr_start_point: bool
    eval_nms: bool = True
    temporal_plus_one: bool = True
    skip_classes: Tuple[str, ...] = ()
    tie_order: str = 'stable'


#: Classes that mmaction2's ``frameAP`` / ``videoAP`` skip by name (MultiSports classes with few instances).
MULTISPORTS_SKIPPED_CLASSES = ('aerobic kick jump', 'aerobic off axis jump', 'aerobic butterfly jump',
                               'aerobic balance turn', 'basketball save', 'basketball jump ball')


PROTOCOLS = {
    'act':
    EvalProtocol(name='act', plus_one=True, matching='remaining', ap_mode='trapezoid', pr_start_point=True),
    'voc': EvalProtocol(name='voc', plus_one=False, matching='voc', ap_mode='voc', pr_start_point=False),
    'multisports':
    EvalProtocol(
        name='multisports',
        plus_one=False,
        matching='voc',
        ap_mode='voc',
        pr_start_point=False,
        eval_nms=False,
        temporal_plus_one=False,
        skip_classes=MULTISPORTS_SKIPPED_CLASSES,
        tie_order='numpy'),
}


def get_protocol(protocol: Union[str, EvalProtocol]) -> EvalProtocol:
    """Return the :class:`EvalProtocol` named ``protocol`` (or ``protocol`` itself).

    Args:
        protocol (str | EvalProtocol): ``'act'``, ``'voc'`` or ``'multisports'``.

    Returns:
        EvalProtocol: The protocol.

    Raises:
        ValueError: For an unknown name.
    """
    if isinstance(protocol, EvalProtocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f'protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}')
    return PROTOCOLS[protocol]


def skipped_class_mask(protocol: Union[str, EvalProtocol], labels: Sequence[str]) -> np.ndarray:
    """``(C,)`` bool, True for the classes of ``labels`` that ``protocol`` never evaluates."""
    skip = set(get_protocol(protocol).skip_classes)
    return np.array([str(name) in skip for name in labels], dtype=bool).reshape(-1)
