"""A small constructed case on which the three evaluation protocols ('act', 'voc', 'multisports') disagree.

Prints the per-class frame-AP@0.5 and video-AP@0.5 of each protocol (the table of docs/evaluation.md)::

    python tools/analysis/protocol_cases.py

One video of 10 frames, two classes, each with one ground-truth tube on frames 1-10:
'walk' (box 10,10,29,29) and 'basketball save' (box 50,50,79,79; one of the six classes MultiSports' code
does not evaluate).

frame detections ('walk'): frame 1 (10,10,29,19) score 0.9 -- IoU 0.5 with +1 pixels, 0.474 without;
frame 2 the GT box, score 0.8, and a near-duplicate (11,11,30,30), score 0.7 -- removed by the NMS of
'act' / 'voc', a false positive for 'multisports'; frame 3 the GT box, score 0.6.
('basketball save'): frame 1 the GT box, score 0.5.

video tubes ('walk'): T1 = the GT box on frames 1-5, score 0.9 -- temporal IoU 5/10 = 0.5 with inclusive
frames, 4/9 = 0.444 without (MultiSports); T2 = (12,12,31,31) on frames 1-10, score 0.8 -- suppressed by T1
in the tube NMS of 'act' / 'voc' (st-IoU 0.33 > 0.3), matched by 'multisports' (no NMS).
('basketball save'): the GT tube, score 0.5.
"""
import numpy as np

from cfad_mm.evaluation.functional import frame_map, video_map

PROTOCOLS = ('act', 'voc', 'multisports')


def build_case():
    """The annotation, the ``(N, 8)`` frame detections and the video tubes of the case."""
    frames = np.arange(1, 11, dtype=np.float64)[:, None]
    walk_box, save_box = np.array([10, 10, 29, 29.]), np.array([50, 50, 79, 79.])
    ann = dict(
        labels=['walk', 'basketball save'],
        nframes={'v1': 10},
        gttubes={'v1': {
            0: [np.hstack([frames, np.tile(walk_box, (10, 1))])],
            1: [np.hstack([frames, np.tile(save_box, (10, 1))])]
        }},
        resolution={'v1': (240, 320)},
        train_videos=[[]],
        test_videos=[['v1']])
    frame_dets = np.array([
        [0, 1, 0, 0.9, 10, 10, 29, 19],
        [0, 2, 0, 0.8, 10, 10, 29, 29],
        [0, 2, 0, 0.7, 11, 11, 30, 30],
        [0, 3, 0, 0.6, 10, 10, 29, 29],
        [0, 1, 1, 0.5, 50, 50, 79, 79],
    ])
    tubes = np.zeros((3, 10, 4))
    masks = np.zeros((3, 10), dtype=bool)
    tubes[0, :5], masks[0, :5] = walk_box, True
    tubes[1], masks[1] = [12, 12, 31, 31], True
    tubes[2], masks[2] = save_box, True
    video_tubes = {'v1': dict(tubes=tubes, tube_masks=masks, scores=np.array([0.9, 0.8, 0.5]),
                              labels=np.array([0, 0, 1]))}
    return ann, frame_dets, video_tubes


def compute():
    """{protocol: {'frame': result of frame_map, 'video': result of video_map at 0.5}} (default settings)."""
    ann, frame_dets, video_tubes = build_case()
    out = {}
    for protocol in PROTOCOLS:
        out[protocol] = dict(
            frame=frame_map(frame_dets, ann, ['v1'], iou_thr=0.5, protocol=protocol),
            video=video_map(video_tubes, ann, ['v1'], iou_thrs=(0.5, ), protocol=protocol)[0.5])
    return out


def _cell(x):
    return 'skipped' if np.isnan(x) else f'{x:.4f}'


def table() -> str:
    """The markdown table of the case."""
    ann, _, _ = build_case()
    res = compute()
    lines = ['| protocol | frame-AP walk | frame-AP basketball save | frame-mAP | video-AP@0.5 walk | '
             'video-AP@0.5 basketball save | video-mAP@0.5 |', '|---|---|---|---|---|---|---|']
    for protocol in PROTOCOLS:
        f, v = res[protocol]['frame'], res[protocol]['video']
        cells = [_cell(f['ap'][c]) for c in range(len(ann['labels']))] + [_cell(f['mAP'])]
        cells += [_cell(v['ap'][c]) for c in range(len(ann['labels']))] + [_cell(v['mAP'])]
        lines.append(f'| `{protocol}` | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    print(table())
