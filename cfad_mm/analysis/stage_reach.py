"""How close the tubes of each stage of CFAD come to the ground truth of a window: the *reach* of the coarse
tubes, of the tubes moved onto the actors (``actor_head``), followed (``track_head``) and refined.

For every ground-truth tube of a window and every stage, the stage's tube (among the window's tubes kept after
the coarse top-k, before any score threshold or NMS) with the highest mean per-frame IoU over the GT tube's
annotated frames of the window is its best tube; frames outside that tube's extent count IoU 0. The table
gives the mean of those per-frame IoUs and the share at IoU >= 0.5 over all GT frames of all windows. It
measures whether some tube of a stage covers each actor, whatever its score or class: an upper bound of what
the scoring and the post-processing can keep. The reference row ``static`` holds each GT tube at its box of
its middle annotated frame of the window (a detector that finds the actor at one time and does not follow it).
With an ``actor_head``, the row ``actor_peaks`` shows how often the head finds the actor at all: on the GT
frames of the head's maps only (the feature steps, or the input frames with ``at_input_frames``), the best
IoU of any box the head finds at that step (its 3x3 peaks at or above ``min_score``), whichever tube is near
it. It is measured on other frames and per frame, not per tube,
so it is no strict bound of the ``snapped`` row (where no peak is used a tube keeps its coarse box, and the
re-fit interpolates between the steps), but it tells finding the actors from the snap's choice of peaks.
Two more rows split what the snap loses: ``snapped_map_frames`` (the snapped tubes on the GT frames of the
head's maps only, as ``actor_peaks``: the peaks the snap chose, against the best ones there) and
``snapped_any_extent`` (the snapped tubes' boxes on every GT frame with each tube's temporal extent ignored:
what the predicted extents, not the boxes, lose). With the actor head's ``tracker``, the row ``tracks`` gives
the best single track of the tracker per GT tube (its peak boxes on the GT frames of the head's maps, 0 where
the track has no peak): what the linking of the peaks keeps of ``actor_peaks`` as whole tracks, before any
tube is assigned one; and the ceiling row ``tracker_ceiling`` the same for perfect peaks (one at each GT box
of each map frame, linked by position and velocity only): whether the motion between the map frames can be
followed by position at all. Two rows give the tracker perfect displacements (the GT motion of each centre to
the maps before and after, what a perfect ``motion`` output would give): ``tracker_ceiling_gt_motion`` on the
perfect peaks, ``tracks_gt_motion`` on the head's own peaks (:func:`oracle_motion_map`). Between them and
``tracks``, they split what the learned displacements lose from what the peaks lose.

With an actor head that learns displacements (``motion=True``), a separate table compares them with the GT
ones (:func:`motion_errors`): at every map and GT box, the output at the GT centre's cell against the GT
centre's displacement to the map before and after, in cells, beside the GT displacement itself (the error of
predicting no motion). The ``tracks_gt_motion`` row shows what perfect displacements would give.

With a refine stage, the ceiling row ``key_ceiling`` bounds what refining boxes at key timestamps can give:
the tubes that enter the first refine pass, each refined perfectly, i.e. given the GT tube's own boxes at its
key frames (those the model's key-timestamp selector chooses, where the GT is annotated), re-fitted as the
refine head re-fits (:func:`key_ceiling_frame_iou`); per GT tube its best such tube. Set beside the
``refined_1`` row it splits what the refine head's boxes lose from what a few refined boxes can reach at all.
Two rows show the refine head's own work on those boxes (:func:`key_box_frame_iou`): per GT tube, the best
tube entering the first pass and, at its key frames where the GT is annotated, the IoU of its boxes as they
enter (``key_boxes_in``) and as the head refines them (``key_boxes_refined``), before the re-fit. They count
those key frames only (and no frame of a GT tube that no entering tube overlaps), so their means compare with
each other, not with the other rows. The three key rows come from one more call of the first refine pass on
the same input; a selector with ``mode='random'`` draws other keys there than in ``refined_1``.

Three ceiling rows tell what the model's representation of a tube reaches before anything is learned
(reference bounds, not strict ones: a least-squares fit, a linear interpolation that the model does not do):
the GT tube itself as a trajectory of the model's tube coder (``fit_ceiling``: least squares over its
annotated frames of the window, as the coder encodes GT), and the GT tube known only at some frames and
linearly interpolated between them (held before the first and after the last of them): at the frames of the
feature steps (``step_ceiling``, a perfect box at every step, e.g. a perfect actor head) and at the sampled
input frames (``input_ceiling``, a perfect box on every frame the network sees). Where the GT is annotated at
none of those frames the middle annotated box is held.

IoU without the ACT ``+1`` (:func:`cfad_mm.structures.tube_ops.box_iou_aligned`), boxes in network-input
pixels. Per-class shares (:func:`summarize_reach` with the GT labels) count the GT frames of each class.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.utils.gaussian_target import get_local_maximum
from torch import Tensor

from cfad_mm.models.utils import feature_step_frames, input_span_frames
from cfad_mm.structures.tube_ops import box_centres, box_iou, box_iou_aligned, clamp_boxes_to_image
from cfad_mm.utils.markdown import markdown_table

#: Order of the stages in the table (those a model does not have are absent).
STAGE_ORDER = ('static', 'fit_ceiling', 'step_ceiling', 'input_ceiling', 'tracker_ceiling',
               'tracker_ceiling_gt_motion', 'actor_peaks', 'tracks', 'tracks_gt_motion', 'coarse', 'snapped',
               'snapped_map_frames', 'snapped_any_extent', 'tracked', 'key_boxes_in', 'key_boxes_refined',
               'key_ceiling')


def best_tube_frame_iou(tubes: Tensor, masks: Tensor, gt_tube: Tensor, gt_mask: Tensor) -> Tensor:
    """Per-frame IoU ``(F,)`` on the ``F`` annotated frames of ``gt_tube (S, 4)`` / ``gt_mask (S,)`` of the
    tube of ``tubes (R, S, 4)`` / ``masks (R, S)`` with the highest mean IoU on them (0 on frames outside its
    mask); zeros when ``R = 0``."""
    frames = torch.nonzero(gt_mask).flatten()
    if tubes.shape[0] == 0:
        return gt_tube.new_zeros(frames.numel())
    iou = _frame_ious(tubes, masks, gt_tube, frames)
    return iou[iou.mean(1).argmax()]


def _frame_ious(tubes: Tensor, masks: Tensor, gt_tube: Tensor, frames: Tensor) -> Tensor:
    """``(R, F)`` IoU of every tube with the GT tube on ``frames (F,)`` (0 outside the tube's mask)."""
    pred = tubes[:, frames]  # (R, F, 4)
    return box_iou_aligned(pred, gt_tube[frames].expand_as(pred)) * masks[:, frames].to(pred.dtype)


def key_box_frame_iou(tubes: Tensor, masks: Tensor, key_boxes: Tensor, refined: Tensor, key_frames: Tensor,
                      key_valid: Tensor, gt_tube: Tensor, gt_mask: Tensor) -> Tuple[Tensor, Tensor]:
    """The work of the refine head on one GT tube: of the tubes entering a refine pass (``tubes (R, S, 4)`` /
    ``masks (R, S)``), the one with the highest mean IoU over the annotated frames of ``gt_tube (S, 4)`` /
    ``gt_mask (S,)`` (the best tube of :func:`best_tube_frame_iou`), and at its key frames (``key_frames
    (R, M)`` span frames, rounded, where ``key_valid (R, M)`` and the GT is annotated) the IoU with the GT box
    of its box entering the refine head (``key_boxes (R, M, 4)``) and of the box the head made of it
    (``refined (R, M, 4)``).

    Returns:
        tuple[Tensor, Tensor]: ``(K,)`` IoUs before and after the refine head (``K = 0`` when ``R = 0`` or
        no tube overlaps the GT tube on any of its frames: no tube is then the best one).
    """
    empty = (gt_tube.new_zeros(0), gt_tube.new_zeros(0))
    if tubes.shape[0] == 0:
        return empty
    mean_iou = _frame_ious(tubes, masks, gt_tube, torch.nonzero(gt_mask).flatten()).mean(1)
    best = mean_iou.argmax()
    if not bool(mean_iou[best] > 0):
        return empty
    frames = key_frames[best].round().long().clamp(0, gt_mask.shape[0] - 1)
    valid = key_valid[best] & gt_mask[frames]
    gt = gt_tube[frames[valid]]
    return (box_iou_aligned(key_boxes[best][valid].to(gt.dtype), gt),
            box_iou_aligned(refined[best][valid].to(gt.dtype), gt))


def static_frame_iou(gt_tube: Tensor, gt_mask: Tensor) -> Tensor:
    """Per-frame IoU ``(F,)`` of the box of the middle annotated frame held over the annotated frames."""
    frames = torch.nonzero(gt_mask).flatten()
    held = gt_tube[frames[(frames.numel() - 1) // 2]].expand(frames.numel(), 4)
    return box_iou_aligned(held, gt_tube[frames])


def interpolated_frame_iou(gt_tube: Tensor, gt_mask: Tensor, known_frames: Tensor) -> Tensor:
    """Per-frame IoU ``(F,)`` on the annotated frames of ``gt_tube (S, 4)`` / ``gt_mask (S,)`` of the tube
    rebuilt from its boxes at ``known_frames (K,)`` (span frames; those annotated are used), linearly
    interpolated between them and held before the first and after the last; the middle annotated box held
    when none of them is annotated (as :func:`static_frame_iou`)."""
    frames = torch.nonzero(gt_mask).flatten()
    known = torch.unique(known_frames[gt_mask[known_frames]])  # sorted, each frame once
    if known.numel() == 0:
        return static_frame_iou(gt_tube, gt_mask)
    if known.numel() == 1:
        return box_iou_aligned(gt_tube[known[0]].expand(frames.numel(), 4), gt_tube[frames])
    f, kf = frames.to(gt_tube.dtype), known.to(gt_tube.dtype)
    right = torch.searchsorted(kf, f).clamp(1, known.numel() - 1)  # the known frames around each frame
    left = right - 1
    a = ((f - kf[left]) / (kf[right] - kf[left])).clamp(0, 1)[:, None]  # (held outside the known frames)
    boxes = gt_tube[known[left]] * (1 - a) + gt_tube[known[right]] * a
    return box_iou_aligned(boxes, gt_tube[frames])


def coder_fit_frame_iou(coder, gt_tubes: Tensor, gt_masks: Tensor, img_shape) -> List[Tensor]:
    """Per GT tube with annotated frames (of ``gt_tubes (G, S, 4)`` / ``gt_masks (G, S)``), the per-frame
    IoU ``(F,)`` on its annotated frames of the tube coder's fit of it (``encode`` over those frames, then
    ``decode``; boxes clipped to ``img_shape``)."""
    keep = gt_masks.any(1)
    if not bool(keep.any()):
        return []
    tubes, masks = gt_tubes[keep], gt_masks[keep]
    coeffs, extents = coder.encode(tubes, masks, img_shape)
    fitted, _ = coder.decode(coeffs, extents, img_shape, num_frames=tubes.shape[1])
    fitted = clamp_boxes_to_image(fitted, img_shape)
    return [box_iou_aligned(fitted[g][masks[g]], tubes[g][masks[g]]) for g in range(tubes.shape[0])]


def peak_frame_iou(where: Tensor, boxes: Tensor, step_frames: Tensor, clip: int, gt_tube: Tensor,
                   gt_mask: Tensor) -> Tensor:
    """Per annotated step frame of ``gt_tube (S, 4)`` / ``gt_mask (S,)``: the best IoU of a peak box of clip
    ``clip`` at that step (0 without one); ``where (P, 2)`` (clip, step) and ``boxes (P, 4)`` of every peak,
    ``step_frames (T',)`` the span frame of each step."""
    ious = []
    for u, f in enumerate(step_frames.tolist()):
        if not bool(gt_mask[f]):
            continue
        sel = (where[:, 0] == clip) & (where[:, 1] == u)
        ious.append(box_iou(gt_tube[f][None], boxes[sel]).max() if bool(sel.any()) else gt_tube.new_zeros(()))
    return torch.stack(ious) if ious else gt_tube.new_zeros(0)


def gt_map_motion(gt_tubes: Tensor, gt_masks: Tensor, map_frames: Tensor, cells_per_pixel: Tensor
                  ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Per map frame of ``map_frames (M,)``: the GT tubes annotated there (indices ``(P_m,)`` into
    ``gt_tubes (G, S, 4)`` / ``gt_masks (G, S)``), their centres ``(P_m, 2)`` (x, y; cells, via
    ``cells_per_pixel (2,)``) and the displacements ``(P_m, 4)`` of each centre to the map before and the map
    after (cells), the way the actor head's ``motion`` output is trained; towards a map where the tube is
    not annotated, the displacement of the other side mirrored (0 when neither is)."""
    frames = map_frames.tolist()
    owners = [torch.nonzero(gt_masks[:, f]).flatten() for f in frames]
    cells = (box_centres(gt_tubes) * cells_per_pixel).double()  # (G, S, 2)
    centres = [cells[o, f] for o, f in zip(owners, frames)]
    moves = []
    for k, (o, f) in enumerate(zip(owners, frames)):
        sides = []
        for j in (k - 1, k + 1):
            if 0 <= j < len(frames):
                ok, move = gt_masks[o, frames[j]], cells[o, frames[j]] - cells[o, f]
            else:
                ok, move = torch.zeros_like(o, dtype=torch.bool), torch.zeros_like(centres[k])
            sides.append((torch.where(ok[:, None], move, torch.zeros_like(move)), ok))
        (before, has_b), (after, has_a) = sides
        before = torch.where(has_b[:, None], before, -after)
        after = torch.where(has_a[:, None], after, -before)
        moves.append(torch.cat([before, after], 1))
    return owners, centres, moves


def oracle_motion_map(gt_tubes: Tensor, gt_masks: Tensor, map_frames: Tensor, cells_per_pixel: Tensor,
                      map_hw: Tuple[int, int], radius: float = 2.0) -> Tensor:
    """A perfect ``motion`` output ``(M, 4, h, w)`` of the actor head for one clip: at every cell within
    ``radius`` cells of a GT centre at a map, the GT displacements of the nearest such centre
    (:func:`gt_map_motion`); 0 elsewhere. Given to the tracker with the head's own peaks, it separates what
    the learned displacements lose from what the peaks lose."""
    h, w = map_hw
    _, centres, moves = gt_map_motion(gt_tubes, gt_masks, map_frames, cells_per_pixel)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5,
                            torch.arange(w, dtype=torch.float64) + 0.5, indexing='ij')
    grid = torch.stack([xs.flatten(), ys.flatten()], -1)  # (h w, 2) cell centres (x, y)
    out = torch.zeros(len(centres), 4, h * w, dtype=torch.float64)
    for k, (c, mv) in enumerate(zip(centres, moves)):
        if c.shape[0] == 0:
            continue
        d, nearest = torch.cdist(grid, c).min(1)
        near = d <= radius
        out[k][:, near] = mv[nearest[near]].T
    return out.reshape(len(centres), 4, h, w)


def motion_errors(motion_map: Tensor, gt_tubes: Tensor, gt_masks: Tensor, map_frames: Tensor,
                  cells_per_pixel: Tensor) -> Tensor:
    """How far the actor head's learned displacements of one clip are from the GT ones: at every map and
    every GT box annotated there, the ``motion`` output ``motion_map (M, 4, h, w)`` read at the cell holding
    the GT centre, against the GT displacements of that centre to the map before and after
    (:func:`gt_map_motion`, in cells; towards a map where the tube is not annotated, the mirrored other side).

    Returns:
        Tensor: ``(P, 2)`` float64, one row per GT centre and side (before, after): the length of the error
        and the length of the GT displacement, in cells.
    """
    h, w = motion_map.shape[-2:]
    _, centres, moves = gt_map_motion(gt_tubes, gt_masks, map_frames, cells_per_pixel)
    rows = [torch.zeros((0, 2), dtype=torch.float64)]
    for k, (c, mv) in enumerate(zip(centres, moves)):
        if c.shape[0] == 0:
            continue
        xs, ys = c[:, 0].floor().long().clamp(0, w - 1), c[:, 1].floor().long().clamp(0, h - 1)
        pred = motion_map[k][:, ys, xs].T.double().cpu()  # (P, 4)
        for side in (slice(0, 2), slice(2, 4)):
            rows.append(torch.stack([(pred[:, side] - mv[:, side]).norm(dim=1), mv[:, side].norm(dim=1)], 1))
    return torch.cat(rows)


def summarize_motion_errors(rows: Sequence[Tensor]) -> Optional[dict]:
    """Medians and 90th percentiles of the GT displacement and of the error of :func:`motion_errors` rows,
    and the shares under one cell of the error and of the GT displacement itself (the error of predicting no
    motion); None without rows."""
    both = torch.cat(list(rows)) if rows else torch.zeros((0, 2), dtype=torch.float64)
    if both.shape[0] == 0:
        return None
    err, gt = both[:, 0], both[:, 1]
    return dict(pairs=int(both.shape[0]), gt_median=float(gt.median()), gt_p90=float(gt.quantile(0.9)),
                error_median=float(err.median()), error_p90=float(err.quantile(0.9)),
                error_under_1=float((err < 1).double().mean()), zero_under_1=float((gt < 1).double().mean()))


def format_motion_error_table(summary: dict) -> str:
    """A markdown table of :func:`summarize_motion_errors`."""
    return markdown_table(
        ['displacements to the maps before / after (cells)', 'values', 'median', '90th percentile',
         'share under 1 cell'],
        [['GT displacement (the error of predicting no motion)', str(summary['pairs']),
          f"{summary['gt_median']:.2f}", f"{summary['gt_p90']:.2f}", f"{summary['zero_under_1']:.3f}"],
         ["error of the actor head's learned displacement", str(summary['pairs']),
          f"{summary['error_median']:.2f}", f"{summary['error_p90']:.2f}",
          f"{summary['error_under_1']:.3f}"]])


def tracker_ceiling_frame_iou(tracker, gt_tubes: Tensor, gt_masks: Tensor, map_frames: Tensor,
                              cells_per_pixel: Tensor, gt_motion: bool = False) -> List[Tensor]:
    """Per GT tube annotated at some of ``map_frames (M,)`` (of ``gt_tubes (G, S, 4)`` / ``gt_masks (G,
    S)``), the per-frame IoU ``(F,)`` on those frames of its best single track when the tracker links perfect
    peaks: at every map, one peak at the centre of each annotated GT box (heat 1, its box), linked by position
    and velocity only (no learned displacements), or with ``gt_motion`` by perfect displacements (each peak's
    GT centre displacement to the map before and after, as a perfect ``motion`` output of the actor head
    would give them; towards a map where its tube is not annotated, the displacement of the other side
    mirrored, or 0); ``cells_per_pixel (2,)`` (x, y) converts the centres to the cells of the maps."""
    frames = map_frames.tolist()
    owners, centres, moves = gt_map_motion(gt_tubes, gt_masks, map_frames, cells_per_pixel)
    local = tracker.link(centres, [torch.ones(o.numel(), dtype=torch.float64) for o in owners],
                         moves if gt_motion else None)
    has = local >= 0  # (J, M)
    boxes = gt_tubes.new_zeros((local.shape[0], len(frames), 4))
    for k, (o, f) in enumerate(zip(owners, frames)):
        boxes[has[:, k], k] = gt_tubes[o[local[has[:, k], k]], f]
    return [best_tube_frame_iou(boxes, has, gt_tubes[g, map_frames], gt_masks[g, map_frames])
            for g in range(gt_tubes.shape[0]) if bool(gt_masks[g, map_frames].any())]


def key_ceiling_frame_iou(model, coeffs: Tensor, extents: Tensor, key_frames: Tensor, key_valid: Tensor,
                          gt_tube: Tensor, gt_mask: Tensor, img_shape: Tuple[int, int]) -> Tensor:
    """Per annotated frame of ``gt_tube (S, 4)`` / ``gt_mask (S,)``: the IoU of the best of the tubes
    ``coeffs (R, 4, P)`` / ``extents (R, 2)`` re-fitted (``model.roi_head.refine_head.refit``) to the GT
    boxes at their key frames ``key_frames (R, M)`` (span frames, rounded to the nearest frame) where
    ``key_valid (R, M)`` and the GT is annotated; zeros when ``R = 0``."""
    span = gt_mask.shape[0]
    if coeffs.shape[0] == 0:
        return best_tube_frame_iou(gt_tube.new_zeros((0, span, 4)), gt_mask.new_zeros((0, span)), gt_tube,
                                   gt_mask)
    frames = key_frames.round().long().clamp(0, span - 1)
    valid = key_valid & gt_mask[frames]
    refit = model.roi_head.refine_head.refit(model.coder, coeffs, extents, key_frames.to(coeffs.dtype),
                                             gt_tube[frames].to(coeffs.dtype), valid, img_shape)
    boxes, masks = model.coder.decode(refit, extents, img_shape, num_frames=span)
    return best_tube_frame_iou(clamp_boxes_to_image(boxes, img_shape).float(), masks, gt_tube, gt_mask)


def window_stage_reach(model, inputs: Tensor, data_samples: list, labels: Optional[List[int]] = None,
                       with_stages: bool = True, motion: Optional[List[Tensor]] = None
                       ) -> Dict[str, List[Tensor]]:
    """Per stage, the per-frame IoUs of the best tube of each GT tube of each clip (see the module doc).

    Args:
        model (CFAD): The detector (eval mode).
        inputs (Tensor): Preprocessed clips ``(N, C, T, H, W)``.
        data_samples (list): Their data samples with ``gt_instances`` (``tubes`` in input pixels).
        labels (list[int], optional): Receives the class of each GT tube, in the order of every stage's
            list.
        with_stages (bool): Run the model's stages. False: only the reference and the ceiling rows, which
            need the model's tube coder, the number of its feature steps and (``tracker_ceiling``) the frames
            and the resolution of the actor head's maps, not trained weights.
        motion (list[Tensor], optional): Receives, with the stages and an actor head with a ``motion``
            output, the :func:`motion_errors` rows of each clip.

    Returns:
        dict[str, list[Tensor]]: stage -> one ``(F,)`` tensor per GT tube with annotated frames
        (``'static'``, the three ceilings, ``'coarse'`` and the stages of :meth:`CFAD.predict_raw`); with an
        actor head also ``'actor_peaks'`` and ``'snapped_map_frames'``, one tensor per GT tube of its
        annotated frames at the frames of the head's maps (the feature steps, or the input frames with
        ``at_input_frames``), and ``'snapped_any_extent'`` (all its annotated frames); with its ``tracker``
        also ``'tracks'`` and ``'tracks_gt_motion'`` (:func:`oracle_motion_map`; at the frames of the maps);
        with an actor head's ``tracker``, with or without the stages, ``'tracker_ceiling'`` and
        ``'tracker_ceiling_gt_motion'`` (at the frames of the maps); with the stages and a refine stage
        ``'key_ceiling'`` (:func:`key_ceiling_frame_iou`), ``'key_boxes_in'`` and ``'key_boxes_refined'``
        (:func:`key_box_frame_iou`; at the key frames of the best entering tube).
    """
    stages: Dict[str, Tensor] = {}
    head = getattr(model.roi_head, 'actor_head', None) if model.refine else None
    actor_head = head if with_stages else None
    actor_outs = []
    hook = actor_head.register_forward_hook(lambda m, a, o: actor_outs.append(o)) if actor_head else None
    try:
        with torch.no_grad():
            if with_stages:
                raw = model.predict_raw(inputs, data_samples, stages)
                geom, num_steps, tube_batch = raw['geom'], raw['actionness'].shape[1], raw['tube_batch']
            else:
                feats = model.extract_feat(inputs)
                geom = model._geometry(inputs, feats, data_samples)  # (checks the samples' span and GT)
                num_steps, tube_batch = feats.shape[2], None
    finally:
        if hook is not None:
            hook.remove()
    peaks = tracks = map_frames = None
    with_tracker = head is not None and head.tracker is not None
    if actor_outs or with_tracker:  # the frames and resolution of the head's maps
        if actor_outs:
            map_shape = actor_outs[0][0].shape
        else:
            with torch.no_grad():
                map_shape = head(feats, inputs, geom.num_frames)[0].shape
        map_frames = head.map_frames(map_shape[1], geom.num_frames).cpu()
        cells_per_pixel = torch.tensor([map_shape[-1] / geom.img_shape[1], map_shape[-2] / geom.img_shape[0]])
    # the GT of each clip on the CPU, for the rows that work on the head's maps
    gt_cpu = [(ds.gt_instances.tubes.float().cpu(), ds.gt_instances.tube_masks.bool().cpu())
              for ds in data_samples]
    if actor_outs:
        where, peak_boxes, _ = actor_head.peak_boxes(actor_outs[0], geom.img_shape)
        peaks = (where.cpu(), peak_boxes.float().cpu(), map_frames)
        if motion is not None and len(actor_outs[0]) > 3:
            motion += [motion_errors(actor_outs[0][3][i], tubes, masks, map_frames, cells_per_pixel)
                       for i, (tubes, masks) in enumerate(gt_cpu)]
        if with_tracker:
            heat_logits, size_map, offset_map = actor_outs[0][:3]
            motion_map = actor_outs[0][3] if len(actor_outs[0]) > 3 else None
            local_max = get_local_maximum(heat_logits.sigmoid())
            tracks = actor_head.link_peaks(local_max, size_map, offset_map, motion_map, geom.img_shape)
            oracle = torch.stack([oracle_motion_map(tubes, masks, map_frames, cells_per_pixel,
                                                    tuple(heat_logits.shape[-2:]))
                                  for tubes, masks in gt_cpu]).to(size_map)
            oracle_tracks = actor_head.link_peaks(local_max, size_map, offset_map, oracle, geom.img_shape)
    keys = None
    if with_stages and 'refined_1' in stages:  # the key frames of the first refine pass, on its input tubes
        before = next(k for k in ('tracked', 'snapped', 'coarse') if k in stages)
        with torch.no_grad():
            ref = model.roi_head.refine(raw['feats'], tube_batch, stages[before], raw['extents'], geom,
                                        classify=False, frames=inputs)
        keys = dict(stage=before, coeffs=stages[before], frames=ref['key_frames'], valid=ref['key_valid'],
                    boxes_in=ref['key_boxes'], refined=ref['refined'])
    decoded = {}
    for name, coeffs in stages.items():
        boxes, masks = model.coder.decode(coeffs, raw['extents'], geom.img_shape, num_frames=geom.num_frames)
        decoded[name] = (clamp_boxes_to_image(boxes, geom.img_shape), masks)
    step_frames = feature_step_frames(num_steps, geom.stride_t, geom.num_frames, inputs.device)
    input_frames = input_span_frames(torch.arange(inputs.shape[2], device=inputs.device), inputs.shape[2],
                                     geom.num_frames)
    out: Dict[str, List[Tensor]] = {name: [] for name in ['static', 'fit_ceiling', 'step_ceiling',
                                                          'input_ceiling', *stages]}
    if peaks is not None:
        out['actor_peaks'], out['snapped_map_frames'], out['snapped_any_extent'] = [], [], []
        on_maps = torch.zeros(geom.num_frames, dtype=torch.bool)
        on_maps[peaks[2]] = True
    if tracks is not None:
        out['tracks'], out['tracks_gt_motion'] = [], []
    if with_tracker:
        out['tracker_ceiling'], out['tracker_ceiling_gt_motion'] = [], []
    if keys is not None:
        out['key_ceiling'], out['key_boxes_in'], out['key_boxes_refined'] = [], [], []
        before_boxes, before_masks = decoded[keys['stage']]  # the tubes entering the first refine pass
    for i, ds in enumerate(data_samples):
        gt = ds.gt_instances
        sel = tube_batch == i if with_stages else None
        out['fit_ceiling'] += coder_fit_frame_iou(model.coder, gt.tubes.float(), gt.tube_masks.bool(),
                                                  geom.img_shape)
        if with_tracker:
            out['tracker_ceiling'] += tracker_ceiling_frame_iou(head.tracker, *gt_cpu[i], map_frames,
                                                                cells_per_pixel)
            out['tracker_ceiling_gt_motion'] += tracker_ceiling_frame_iou(
                head.tracker, *gt_cpu[i], map_frames, cells_per_pixel, gt_motion=True)
        for g in range(gt.tubes.shape[0]):
            gt_tube, gt_mask = gt.tubes[g].float(), gt.tube_masks[g].bool()
            if not bool(gt_mask.any()):
                continue
            if labels is not None:
                labels.append(int(gt.labels[g]))
            out['static'].append(static_frame_iou(gt_tube, gt_mask))
            out['step_ceiling'].append(interpolated_frame_iou(gt_tube, gt_mask, step_frames))
            out['input_ceiling'].append(interpolated_frame_iou(gt_tube, gt_mask, input_frames))
            if peaks is not None:
                out['actor_peaks'].append(peak_frame_iou(*peaks, i, gt_tube.cpu(), gt_mask.cpu()))
                boxes, masks = decoded['snapped']
                map_mask = gt_mask & on_maps.to(gt_mask.device)
                out['snapped_map_frames'].append(best_tube_frame_iou(boxes[sel].float(), masks[sel], gt_tube,
                                                                     map_mask))
                out['snapped_any_extent'].append(best_tube_frame_iou(
                    boxes[sel].float(), torch.ones_like(masks[sel]), gt_tube, gt_mask))
            if tracks is not None:  # the tracks live at the map frames only
                frames_dev = map_frames.to(gt_tube.device)
                for name, found in (('tracks', tracks), ('tracks_gt_motion', oracle_tracks)):
                    out[name].append(best_tube_frame_iou(
                        found[i]['boxes'].float().to(gt_tube.device),
                        (found[i]['heat'] > 0).to(gt_mask.device), gt_tube[frames_dev], gt_mask[frames_dev]))
            if keys is not None:
                out['key_ceiling'].append(key_ceiling_frame_iou(
                    model, keys['coeffs'][sel], raw['extents'][sel], keys['frames'][sel], keys['valid'][sel],
                    gt_tube, gt_mask, geom.img_shape))
                key_in, key_out = key_box_frame_iou(
                    before_boxes[sel].float(), before_masks[sel], keys['boxes_in'][sel], keys['refined'][sel],
                    keys['frames'][sel], keys['valid'][sel], gt_tube, gt_mask)
                out['key_boxes_in'].append(key_in)
                out['key_boxes_refined'].append(key_out)
            for name, (boxes, masks) in decoded.items():
                out[name].append(best_tube_frame_iou(boxes[sel].float(), masks[sel], gt_tube, gt_mask))
    return out


def summarize_reach(per_stage: Dict[str, List[Tensor]],
                    labels: Optional[Sequence[int]] = None) -> Dict[str, dict]:
    """Per stage: ``gt_tubes``, ``frames``, ``mean_iou`` and ``share_iou_05`` (share of GT frames whose
    best-tube IoU is >= 0.5), in the order of :data:`STAGE_ORDER` then ``refined_1``, ``refined_2``, ...;
    with ``labels`` (the class of each GT tube, as :func:`window_stage_reach` gives them) also
    ``share_iou_05_per_class``: ``{class: share}`` over the GT frames of each class."""
    def order(name):
        return (STAGE_ORDER.index(name), 0) if name in STAGE_ORDER else (len(STAGE_ORDER), name)

    def share(ious):
        return float('nan') if ious.numel() == 0 else float((ious >= 0.5).float().mean())

    summary = {}
    for name in sorted(per_stage, key=order):
        ious = torch.cat(per_stage[name]) if per_stage[name] else torch.zeros(0)
        summary[name] = dict(gt_tubes=len(per_stage[name]), frames=int(ious.numel()),
                             mean_iou=float('nan') if ious.numel() == 0 else float(ious.mean()),
                             share_iou_05=share(ious))
        if labels is not None:
            if len(labels) != len(per_stage[name]):
                raise ValueError(f'summarize_reach: {len(labels)} labels for {len(per_stage[name])} GT tubes '
                                 f'of stage {name!r}')
            summary[name]['share_iou_05_per_class'] = {
                c: share(torch.cat([i for i, lab in zip(per_stage[name], labels) if lab == c]))
                for c in sorted(set(labels))}
    return summary


STAGE_TEXT = {
    'static': 'reference: the GT box of the middle annotated frame, held',
    'fit_ceiling': "ceiling: the GT tube as a trajectory of the model's tube coder",
    'step_ceiling': 'ceiling: the GT boxes at the feature steps, interpolated',
    'input_ceiling': 'ceiling: the GT boxes at the sampled input frames, interpolated',
    'actor_peaks': ("best actor peak of the step, whichever tube is near (GT frames at the head's map frames "
                    'only: the feature steps, or the input frames with at_input_frames)'),
    'coarse': 'coarse tubes (top-k of the coarse head)',
    'tracker_ceiling': ("ceiling: the best single track of the tracker on perfect peaks (the GT boxes at the "
                        "head's map frames, linked by position and velocity; those frames only)"),
    'tracker_ceiling_gt_motion': ('ceiling: the same with perfect displacements (the GT centre motion '
                                  'between maps, as a perfect learned motion output gives it)'),
    'tracks': "best single track of the actor head's tracker (GT frames at the head's map frames only)",
    'tracks_gt_motion': ("the same tracker on the head's own peaks with perfect displacements (the GT motion "
                         'at the cells within 2 of a GT centre)'),
    'snapped': 'moved onto the actor peaks (actor_head)',
    'snapped_map_frames': "moved onto the actor peaks, GT frames at the head's map frames only",
    'snapped_any_extent': 'moved onto the actor peaks, boxes only (each tube taken over the whole span)',
    'tracked': 'followed through the steps (track_head)',
    'key_boxes_in': ('refine pass 1: the boxes of the best entering tube at its key frames, as they enter '
                     '(GT frames at those key frames only)'),
    'key_boxes_refined': ('refine pass 1: the same key boxes as the refine head refines them (the same '
                          'frames)'),
    'key_ceiling': ('ceiling: the tubes entering the refine stage with perfect boxes at their key frames '
                    '(the GT boxes there, re-fitted as the refine head does)'),
}


def format_reach_table(summary: Dict[str, dict]) -> str:
    """A markdown table of :func:`summarize_reach`."""
    rows = []
    for name, s in summary.items():
        rows.append([_stage_text(name), str(s['gt_tubes']), str(s['frames']), f"{s['mean_iou']:.3f}",
                     f"{s['share_iou_05']:.3f}"])
    return markdown_table(['stage', 'GT tubes (windows)', 'GT frames', 'mean IoU of the best tube',
                           'share of GT frames at IoU >= 0.5'], rows)


def _stage_text(name: str) -> str:
    return STAGE_TEXT.get(name, f'after refine pass {name.split("_")[-1]}' if name.startswith('refined_')
                          else name)


def format_class_reach_table(summary: Dict[str, dict], class_names: Optional[Sequence[str]] = None) -> str:
    """A markdown table of the per-class shares of :func:`summarize_reach` (with labels): one row per stage,
    one column per class (named by ``class_names[c]`` when given)."""
    classes = sorted({c for s in summary.values() for c in s.get('share_iou_05_per_class', {})})
    if not classes:
        raise ValueError('format_class_reach_table: the summary has no per-class shares '
                         '(summarize_reach(per_stage, labels))')
    names = [class_names[c] if class_names is not None and c < len(class_names) else str(c) for c in classes]
    rows = [[_stage_text(name)] + [f"{s['share_iou_05_per_class'].get(c, float('nan')):.3f}" for c in classes]
            for name, s in summary.items()]
    return markdown_table(['stage (share of GT frames at IoU >= 0.5)'] + names, rows)
