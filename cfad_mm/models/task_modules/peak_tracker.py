"""PeakTracker: the actor peaks of the maps of one window linked into class-agnostic tracks, and each tube of
the window given one track as a whole."""
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmaction.registry import TASK_UTILS
from torch import Tensor

from cfad_mm.structures.matching import max_gain_matching


@TASK_UTILS.register_module()
class PeakTracker:
    """Link the actor peaks of consecutive maps into tracks, then assign each tube to one track.

    The step-by-step snap of :class:`~cfad_mm.models.heads.StepActorHead` chooses a peak for each tube at each
    map on its own: a tube far from its actor takes whatever peak is near it, and several tubes take the same
    actor. Here the peaks are first linked through the window, the way a tracker links detections
    (CenterTrack-style: each track's position is predicted at the next map, by the learned displacement of its
    last peak when the head has one, else by its velocity; the one-to-one matching of maximal total gain
    links predicted positions and peaks within ``gate`` cells; a track waits up to ``max_gap`` maps for its
    actor to come back, as after an occlusion), and then each tube is matched with one whole track::

        affinity(tube, track) = sum over maps m inside the tube's extent where the track has a peak of
                                heat(m) x exp(-d(m)^2 / (2 assign_sigma^2)) / (maps inside the tube's extent)

    (``d``: distance in cells between the tube's centre and the track's peak), one track per tube, the pairs
    of maximal total affinity above ``min_affinity``. So a tube follows one actor over the whole window, and
    duplicates of one actor's tube go to other actors instead of all onto the same peaks.

    Args:
        gate (float): Largest distance (cells) between a track's predicted position and a peak it links to,
            per map of gap (a track that missed ``g - 1`` maps may link ``g x gate`` away). Defaults to 3.0.
        max_gap (int): Maps a track may miss before it ends. Defaults to 4.
        max_peaks (int): Peaks per map at most (those of highest heat). Defaults to 16.
        assign_sigma (float): Scale (cells) of the distance term of the affinity. Defaults to 4.0.
        min_affinity (float): Smallest affinity of an assigned pair; a tube without one keeps the step-by-step
            snap. Defaults to 0.05.
        first_gate (float, optional): ``gate`` of a track's first link when there are no learned displacements
            (its velocity is not known yet, so it is predicted to stand still). Defaults to ``2 x gate``.
    """

    def __init__(self, gate: float = 3.0, max_gap: int = 4, max_peaks: int = 16, assign_sigma: float = 4.0,
                 min_affinity: float = 0.05, first_gate: Optional[float] = None):
        if gate <= 0 or assign_sigma <= 0:
            raise ValueError(f'PeakTracker: gate and assign_sigma must be > 0, got {gate} and {assign_sigma}')
        if int(max_gap) < 0 or int(max_peaks) < 1 or min_affinity < 0:
            raise ValueError(f'PeakTracker: max_gap must be >= 0, max_peaks >= 1 and min_affinity >= 0, got '
                             f'{max_gap}, {max_peaks} and {min_affinity}')
        self.gate = float(gate)
        self.first_gate = 2 * self.gate if first_gate is None else float(first_gate)
        if self.first_gate <= 0:
            raise ValueError(f'PeakTracker: first_gate must be > 0, got {first_gate}')
        self.max_gap = int(max_gap)
        self.max_peaks = int(max_peaks)
        self.assign_sigma = float(assign_sigma)
        self.min_affinity = float(min_affinity)

    def link(self, centres: Sequence[Tensor], heats: Sequence[Tensor],
             moves: Optional[Sequence[Tensor]] = None) -> Tensor:
        """Tracks through the maps of one window.

        Args:
            centres (Sequence[Tensor]): Per map ``m`` of ``M``, the centres ``(P_m, 2)`` (x, y; cells) of its
                peaks.
            heats (Sequence[Tensor]): Per map, their heat ``(P_m,)``.
            moves (Sequence[Tensor], optional): Per map, the learned displacement ``(P_m, 4)`` (cells: x, y to
                the map before, x, y to the map after) at each peak.

        Returns:
            Tensor: ``(J, M)`` int64, the peak of each track at each map (its index in that map's
            ``centres``; -1 where the track has none), tracks in the order they start.
        """
        num_maps = len(centres)
        tracks: List[dict] = []
        for m in range(num_maps):
            c = centres[m].detach().cpu().double().numpy().reshape(-1, 2)
            h = heats[m].detach().cpu().double().numpy().reshape(-1)
            mv = None if moves is None else moves[m].detach().cpu().double().numpy().reshape(-1, 4)
            kept = np.argsort(-h, kind='stable')[:self.max_peaks]
            alive = [t for t in tracks if m - t['last'] <= self.max_gap + 1]
            matched = np.full(len(kept), -1, dtype=np.int64)
            if alive and len(kept):
                gap = np.array([m - t['last'] for t in alive], dtype=np.float64)  # (A,)
                last = np.stack([t['centre'] for t in alive])  # (A, 2)
                pred = last + np.stack([t['vel'] for t in alive]) * gap[:, None]
                dist = np.linalg.norm(c[kept][None] - pred[:, None], axis=-1)  # (A, K)
                if mv is not None:  # and back from each peak by its own displacement to the map before
                    back = c[kept][None] + mv[kept, None, 0:2].transpose(1, 0, 2) * gap[:, None, None]
                    dist = 0.5 * (dist + np.linalg.norm(back - last[:, None], axis=-1))
                unknown = np.array([t['length'] == 1 and mv is None for t in alive])  # no velocity yet
                reach = np.where(unknown, self.first_gate, self.gate)[:, None] * gap[:, None]
                choice = max_gain_matching((reach - dist).T, np.ones_like(dist.T, dtype=bool), 0.0)
                for k, a in enumerate(choice):
                    if a >= 0:
                        matched[k] = a
                        t = alive[a]
                        p = kept[k]
                        step = (c[p] - t['centre']) / (m - t['last'])
                        t['vel'] = mv[p, 2:4] if mv is not None else (
                            step if t['length'] == 1 else 0.5 * t['vel'] + 0.5 * step)
                        t['centre'], t['last'], t['length'] = c[p], m, t['length'] + 1
                        t['peaks'][m] = p
            for k in np.nonzero(matched < 0)[0]:
                p = kept[k]
                peaks = np.full(num_maps, -1, dtype=np.int64)
                peaks[m] = p
                tracks.append(dict(centre=c[p], last=m, length=1, peaks=peaks,
                                   vel=mv[p, 2:4] if mv is not None else np.zeros(2)))
        if not tracks:
            return torch.full((0, num_maps), -1, dtype=torch.long)
        return torch.from_numpy(np.stack([t['peaks'] for t in tracks]))

    def affinity(self, tube_centres: Tensor, tube_in: Tensor, track_centres: Tensor,
                 track_heat: Tensor) -> Tensor:
        """The affinity ``(R, J)`` of every tube with every track (the formula of the class doc).

        Args:
            tube_centres (Tensor): ``(R, M, 2)`` the tubes' centres at the maps (cells).
            tube_in (Tensor): ``(R, M)`` bool, the maps inside each tube's extent.
            track_centres (Tensor): ``(J, M, 2)`` the tracks' peak centres (cells; any value where no peak).
            track_heat (Tensor): ``(J, M)`` their heat, 0 where the track has no peak.
        """
        d2 = ((tube_centres[:, None] - track_centres[None]) ** 2).sum(-1)  # (R, J, M)
        near = torch.exp(-d2 / (2 * self.assign_sigma ** 2)) * track_heat[None]
        inside = tube_in[:, None].to(near.dtype)
        return (near * inside).sum(-1) / inside.sum(-1).clamp(min=1)

    def assign(self, tube_centres: Tensor, tube_in: Tensor, track_centres: Tensor,
               track_heat: Tensor) -> Tensor:
        """The track ``(R,)`` (int64, -1 for none) of each tube: the one-to-one pairs of maximal total
        :meth:`affinity` above ``min_affinity`` (arguments as :meth:`affinity`)."""
        r, j = tube_centres.shape[0], track_centres.shape[0]
        if r == 0 or j == 0:
            return torch.full((r,), -1, dtype=torch.long)
        a = self.affinity(tube_centres, tube_in, track_centres, track_heat).detach().cpu().double().numpy()
        return torch.from_numpy(max_gain_matching(a, np.ones_like(a, dtype=bool), self.min_affinity))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(gate={self.gate}, first_gate={self.first_gate}, '
                f'max_gap={self.max_gap}, max_peaks={self.max_peaks}, assign_sigma={self.assign_sigma}, '
                f'min_affinity={self.min_affinity})')
