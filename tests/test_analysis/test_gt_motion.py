"""Motion statistics of the ground truth (cfad_mm.analysis.gt_motion) on hand-computed cases, and the tool."""
import json

import numpy as np
import pytest
from tool_scripts import load_tool

from cfad_mm.analysis.gt_motion import (
    format_motion_tables,
    motion_statistics,
    video_association,
    video_nearest_other,
    video_speeds,
)


def boxes_at(centres, half=(1.0, 2.0)):
    """xyxy boxes ``(..., 4)`` of width 2 and height 4 around ``centres (..., 2)``."""
    c = np.asarray(centres, dtype=np.float64)
    h = np.array(half)
    return np.concatenate([c - h, c + h], axis=-1)


def crossing(frames=11):
    """Actor A at x = 2t, actor B at x = 21 - 2t (y = 10): they pass each other between frames 5 and 6."""
    t = np.arange(frames, dtype=np.float64)
    a = np.stack([2 * t, np.full_like(t, 10)], -1)
    b = np.stack([21 - 2 * t, np.full_like(t, 10)], -1)
    return boxes_at(np.stack([a, b])), np.ones((2, frames), dtype=bool)


def test_speeds_per_pair_of_annotated_frames():
    boxes, masks = crossing(5)
    masks[0, 2] = False  # A's pairs (1, 2) and (2, 3) drop out
    px, rel = video_speeds(boxes, masks)
    assert px.shape == (6, ) and np.allclose(px, 2.0)
    assert np.allclose(rel, 0.5)  # 2 px per frame / height 4


def test_nearest_other_actor():
    boxes, masks = crossing(3)  # centre distances: 21, 17, 13
    masks[1, 2] = False  # frame 2: A alone, not counted
    px, rel = video_nearest_other(boxes, masks)
    assert sorted(px.tolist()) == [17.0, 17.0, 21.0, 21.0]
    assert np.allclose(rel, px / 4)


def test_association_of_a_crossing():
    boxes, masks = crossing(11)
    # gap 2, f = 2..8: by position the other actor is nearer at f = 4 and 5 (|17 - 4f| < 4), both actors
    steps, by_position, by_velocity = video_association(boxes, masks, 2)
    assert (steps, by_position, by_velocity) == (14, 10, 14)
    # gap 1, f = 1..9: the other is nearer only where |19 - 4f| < 2, i.e. f = 5 (distance 1)
    assert video_association(boxes, masks, 1) == (18, 16, 18)


def test_association_needs_the_three_frames():
    boxes, masks = crossing(11)
    masks[0, 6] = False  # A: f = 4 (f + 2 = 6), 6 and 8 (f - 2 = 6) are not scored
    steps, _, _ = video_association(boxes, masks, 2)
    assert steps == 14 - 3
    assert video_association(boxes, masks, 5) == (2, 0, 2)  # f = 5 only: both nearer the other by position
    assert video_association(boxes, masks, 6) == (0, 0, 0)  # no frame has f - 6 and f + 6
    with pytest.raises(ValueError, match='gap'):
        video_association(boxes, masks, 0)


def test_videos_without_tubes_and_ties():
    empty_boxes, empty_masks = np.zeros((0, 11, 4)), np.zeros((0, 11), dtype=bool)
    assert [a.size for a in video_speeds(empty_boxes, empty_masks)] == [0, 0]
    assert [a.size for a in video_nearest_other(empty_boxes, empty_masks)] == [0, 0]
    assert video_association(empty_boxes, empty_masks, 2) == (0, 0, 0)
    stats = motion_statistics([(empty_boxes, empty_masks)])
    assert stats['videos'] == 1 and stats['speed_px'] is None and stats['association'][0]['steps'] == 0
    # two tubes with the same boxes (one actor annotated twice): every step is a tie, and a tie is wrong
    boxes, masks = crossing(7)
    twice = np.stack([boxes[0], boxes[0]])
    assert video_association(twice, masks, 1) == (10, 0, 0)
    assert np.allclose(video_nearest_other(twice, masks)[0], 0.0)


def test_a_lone_actor_is_always_right():
    boxes, masks = crossing(11)
    assert video_association(boxes[:1], masks[:1], 3) == (5, 5, 5)


def test_statistics_over_videos_and_tables():
    stats = motion_statistics([crossing(11), crossing(11)], gaps=(1, 2, 20))
    assert stats['videos'] == 2
    assert stats['speed_px']['n'] == 40 and stats['speed_px']['median'] == pytest.approx(2.0)
    assert stats['nearest_px']['n'] == 44
    by_gap = {a['gap']: a for a in stats['association']}
    assert by_gap[2]['steps'] == 28 and by_gap[2]['position'] == pytest.approx(20 / 28)
    assert by_gap[2]['velocity'] == pytest.approx(1.0)
    assert by_gap[20]['steps'] == 0 and by_gap[20]['position'] is None
    text = format_motion_tables(stats)
    assert '| 2 | 28 | 71.4 % | 100.0 % |' in text
    assert '| 20 | 0 | - | - |' in text
    assert '| centre motion per frame (pixels) | 40 | 2.00 |' in text


def test_tool_on_a_synthetic_set(tiny_synth, tmp_path, capsys):
    _, ann_file = tiny_synth
    tool = load_tool('tools/analysis/gt_motion.py')
    doc = tmp_path / 'doc.md'
    doc.write_text('# Doc\n')
    out = tmp_path / 'motion.json'
    tool.main([ann_file, '--subset', 'all', '--gaps', '1', '3', '--json', str(out), '--doc', str(doc),
               '--block', 'motion'])
    stats = json.loads(out.read_text())
    assert stats['videos'] == 6 and [a['gap'] for a in stats['association']] == [1, 3]
    assert stats['association'][0]['steps'] > 0
    text = doc.read_text()
    assert '<!-- motion:start -->' in text and 'tools/analysis/gt_motion.py' in text
    assert '--doc' not in text  # where the output goes is not part of the cited command
    with pytest.raises(SystemExit):
        tool.main([ann_file + '.missing'])
    assert 'no such file' in capsys.readouterr().err
