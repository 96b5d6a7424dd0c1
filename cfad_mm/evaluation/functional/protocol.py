"""Evaluation protocols: the conventions that differ between the codebases that report tube detection results.

Two protocols are offered so that numbers can be compared with published ones:

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
"""
from dataclasses import dataclass
from typing import Union

__all__ = ['EvalProtocol', 'PROTOCOLS', 'get_protocol']


@dataclass(frozen=True)
class EvalProtocol:
    """The conventions of one evaluation protocol.

    Attributes:
        name (str): ``'act'`` or ``'voc'``.
        plus_one (bool): Inclusive-pixel box areas and overlaps.
        matching (str): ``'remaining'`` (ACT: best among the GT not matched yet) or ``'voc'`` (best among all
            GT; a detection whose best GT is already matched is a false positive).
        ap_mode (str): ``'trapezoid'`` (ACT) or ``'voc'`` (all-point interpolation with precision envelope).
        pr_start_point (bool): Whether the PR curve starts with the point (recall 0, precision 1) (ACT).
    """
    name: str
    plus_one: bool
    matching: str
    ap_mode: str
    pr_start_point: bool


PROTOCOLS = {
    'act':
    EvalProtocol(name='act', plus_one=True, matching='remaining', ap_mode='trapezoid', pr_start_point=True),
    'voc': EvalProtocol(name='voc', plus_one=False, matching='voc', ap_mode='voc', pr_start_point=False),
}


def get_protocol(protocol: Union[str, EvalProtocol]) -> EvalProtocol:
    """Return the :class:`EvalProtocol` named ``protocol`` (or ``protocol`` itself).

    Args:
        protocol (str | EvalProtocol): ``'act'`` or ``'voc'``.

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
