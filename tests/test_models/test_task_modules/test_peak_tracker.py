"""PeakTracker: linking of peaks through the maps (crossing actors, gaps, the gate, learned displacements)
and the one-to-one assignment of tubes to tracks, by hand."""
import math

import pytest
import torch
from mmaction.registry import TASK_UTILS

import cfad_mm  # noqa: F401


def tracker(**kw):
    return TASK_UTILS.build(dict(type='PeakTracker', **kw))


def per_map(points):
    """Per map, ``(P_m, 2)`` centres and ``(P_m,)`` heats (all 0.5) from a list of lists of (x, y)."""
    return ([torch.tensor(p, dtype=torch.float64).reshape(-1, 2) for p in points],
            [torch.full((len(p),), 0.5, dtype=torch.float64) for p in points])


def test_two_crossing_actors_keep_their_tracks():
    """A moves right 2 cells per map (x = 0 .. 8), B left 2.2 cells per map (x = 8.8 .. 0), both on row 5;
    they pass each other between maps 2 and 3 (x = 4 and 4.4 at map 2; the peaks of maps 2 and 3 listed B
    first). At map 3 the nearest peak to A's last position (4) is B's (2.2, 1.8 away, A's own is 2 away):
    nearest-position matching would swap them. Predicted by each track's velocity, both keep their actor."""
    a = [(0, 5), (2, 5), (4, 5), (6, 5), (8, 5)]
    b = [(8.8, 5), (6.6, 5), (4.4, 5), (2.2, 5), (0, 5)]
    points = [[a[0], b[0]], [a[1], b[1]], [b[2], a[2]], [b[3], a[3]], [a[4], b[4]]]
    centres, heats = per_map(points)
    tracks = tracker(gate=2.5).link(centres, heats)
    assert tracks.tolist() == [[0, 0, 1, 1, 0], [1, 1, 0, 0, 1]]


def test_a_gap_is_bridged_up_to_max_gap_and_the_gate_grows_with_it():
    """An actor at x = 0, 1, (missed), (missed), 4, 5: with max_gap 2 one track (the 3-cell move over a gap of
    3 maps is within 3 x gate); with max_gap 1 the track ends and a second one starts."""
    points = [[(0, 0)], [(1, 0)], [], [], [(4, 0)], [(5, 0)]]
    centres, heats = per_map(points)
    assert tracker(gate=1.0, max_gap=2).link(centres, heats).tolist() == [[0, 0, -1, -1, 0, 0]]
    assert tracker(gate=1.0, max_gap=1).link(centres, heats).tolist() == [[0, 0, -1, -1, -1, -1],
                                                                         [-1, -1, -1, -1, 0, 0]]
    # a jump beyond the gate starts a new track (the first link of a track, whose velocity is not known yet,
    # has its own gate: 2 x gate by default); no peak at all gives no track
    centres, heats = per_map([[(0, 0)], [(4, 0)]])
    assert tracker(gate=3.0, first_gate=3.0).link(centres, heats).tolist() == [[0, -1], [-1, 0]]
    assert tracker(gate=3.0).link(centres, heats).tolist() == [[0, 0]]
    centres, heats = per_map([[(0, 0)], [(2, 0)], [(6, 0)]])  # the second link has the plain gate
    assert tracker(gate=3.0).link(centres, heats).tolist() == [[0, 0, 0]]
    centres, heats = per_map([[(0, 0)], [(2, 0)], [(8.5, 0)]])
    assert tracker(gate=3.0).link(centres, heats).tolist() == [[0, 0, -1], [-1, -1, 0]]
    assert tuple(tracker().link(*per_map([[], []])).shape) == (0, 2)


def test_only_the_strongest_peaks_of_a_map_are_linked():
    centres = [torch.tensor([[0.0, 0.0], [5.0, 0.0], [9.0, 0.0]])]
    heats = [torch.tensor([0.2, 0.9, 0.5])]
    assert tracker(max_peaks=2).link(centres, heats).tolist() == [[1], [2]]


def test_learned_displacements_link_an_actor_that_turns():
    """An actor moving right 2 cells per map turns back at map 2 (x = 0, 2, 4, 2, 0) while a look-alike
    stands at x = 6 from map 3 on. By its velocity the track would expect x = 6 at map 3 and take the
    look-alike; with the displacements learned at the actor's peaks (to the map before / after) it keeps the
    actor."""
    points = [[(0, 0)], [(2, 0)], [(4, 0)], [(2, 0), (6, 0)], [(0, 0), (6, 0)]]
    centres, heats = per_map(points)
    by_velocity = tracker(gate=2.5).link(centres, heats)
    assert by_velocity.tolist()[0] == [0, 0, 0, 1, 1]
    moves = [torch.tensor([[0.0, 0, 2, 0]]), torch.tensor([[-2.0, 0, 2, 0]]),
             torch.tensor([[-2.0, 0, -2, 0]]), torch.tensor([[2.0, 0, -2, 0], [0, 0, 0, 0]]),
             torch.tensor([[2.0, 0, 0, 0], [0, 0, 0, 0]])]
    learned = tracker(gate=2.5).link(centres, heats, moves)
    assert learned.tolist() == [[0, 0, 0, 0, 0], [-1, -1, -1, 1, 1]]


def test_assignment_affinity_by_hand_and_one_track_per_tube():
    """Two tubes at x = 0 and x = 1 (2 maps each, in their extent), tracks at x = 0 (heat 0.8) and x = 4
    (heat 0.5), sigma 2: affinities by hand; the one-to-one assignment of maximal total gives tube 0 the
    track at x = 0 and tube 1 the other one (not both the same); with a higher min_affinity tube 1 gets
    none."""
    tubes = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    tracks = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[4.0, 0.0], [4.0, 0.0]]])
    heat = torch.tensor([[0.8, 0.8], [0.5, 0.5]])
    tube_in = torch.ones(2, 2, dtype=torch.bool)
    t = tracker(assign_sigma=2.0, min_affinity=0.05)
    by_hand = [[0.8, 0.5 * math.exp(-16 / 8)], [0.8 * math.exp(-1 / 8), 0.5 * math.exp(-9 / 8)]]
    assert t.affinity(tubes, tube_in, tracks, heat).tolist() == [pytest.approx(row) for row in by_hand]
    assert t.assign(tubes, tube_in, tracks, heat).tolist() == [0, 1]  # 0.8 + 0.162 > 0.068 + 0.706
    t = tracker(assign_sigma=2.0, min_affinity=0.2)
    assert t.assign(tubes, tube_in, tracks, heat).tolist() == [0, -1]
    # maps outside a tube's extent do not count: tube 1 inside at map 1 only, where track 1 has no peak
    heat_gap = torch.tensor([[0.8, 0.8], [0.5, 0.0]])
    tube_in = torch.tensor([[True, True], [False, True]])
    assert float(tracker(assign_sigma=2.0).affinity(tubes, tube_in, tracks, heat_gap)[1, 1]) == 0
    assert tracker(assign_sigma=2.0).assign(tubes, tube_in, tracks, heat_gap).tolist() == [0, -1]
    assert tracker().assign(tubes[:0], tube_in[:0], tracks, heat).tolist() == []


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match='gate and assign_sigma must be > 0'):
        tracker(gate=0)
    with pytest.raises(ValueError, match='first_gate must be > 0'):
        tracker(first_gate=0)
    with pytest.raises(ValueError, match='max_gap must be >= 0'):
        tracker(max_gap=-1)
