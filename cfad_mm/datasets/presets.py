"""Dataset presets: :class:`TubeDataset` with the class names and file layouts of the common benchmarks.

=====================  ============================  =================  ===============================
preset                 default ``ann_file``          ``data_prefix``    media
=====================  ============================  =================  ===============================
``UCF101_24Dataset``   ``UCF101v2-GT.pkl``           ``rgb-images``     frames ``{video}/{:05d}.jpg``
``JHMDB21Dataset``     ``JHMDB-GT.pkl``              ``Frames``         frames ``{video}/{:05d}.png``
``UCFSportsDataset``   ``UCFSports-GT.pkl``          ``Frames``         frames ``{video}/{:05d}.jpg``
``SyntheticTubeDataset`` ``annotations.pkl``         ``videos``         video files ``{video}.mp4``
``MultiSportsDataset`` ``annotations/multisports_GT.pkl`` ``trainval``  video files ``{video}.mp4``
=====================  ============================  =================  ===============================

All paths are relative to ``data_root`` (e.g. ``data/ucf101_24``). A preset sets only what differs from the
defaults of :class:`TubeDataset` (``source='video'``, ``video_ext='.mp4'``, ``filename_tmpl='{:05d}.jpg'``);
every argument of :class:`TubeDataset` can be overridden (e.g. ``source='video', video_ext='.avi'`` for
UCF101-24 videos instead of frames). The class names below are the ``labels`` of the published ACT/MOC
pickles; the names in the annotation file win (a different number of classes raises, different spellings
only warn).
"""
from typing import Optional

from mmaction.registry import DATASETS

from .tube_dataset import TubeDataset

UCF101_24_CLASSES = ('Basketball', 'BasketballDunk', 'Biking', 'CliffDiving', 'CricketBowling', 'Diving',
                     'Fencing', 'FloorGymnastics', 'GolfSwing', 'HorseRiding', 'IceDancing', 'LongJump',
                     'PoleVault', 'RopeClimbing', 'SalsaSpin', 'SkateBoarding', 'Skiing', 'Skijet',
                     'SoccerJuggling', 'Surfing', 'TennisSwing', 'TrampolineJumping', 'VolleyballSpiking',
                     'WalkingWithDog')

JHMDB21_CLASSES = ('brush_hair', 'catch', 'clap', 'climb_stairs', 'golf', 'jump', 'kick_ball', 'pick', 'pour',
                   'pullup', 'push', 'run', 'shoot_ball', 'shoot_bow', 'shoot_gun', 'sit', 'stand',
                   'swing_baseball', 'throw', 'walk', 'wave')

UCFSPORTS_CLASSES = ('Diving', 'Golf', 'Kicking', 'Lifting', 'Riding', 'Run', 'SkateBoarding', 'Swing1',
                     'Swing2', 'Walk')


# MultiSports (Li et al., ICCV 2021), 66 classes, in the label order of ``multisports_GT.pkl`` (0-based ids).
MULTISPORTS_CLASSES = (
    'aerobic push up', 'aerobic explosive push up', 'aerobic explosive support', 'aerobic leg circle',
    'aerobic helicopter', 'aerobic support', 'aerobic v support', 'aerobic horizontal support',
    'aerobic straight jump', 'aerobic illusion', 'aerobic bent leg(s) jump', 'aerobic pike jump',
    'aerobic straddle jump', 'aerobic split jump', 'aerobic scissors leap', 'aerobic kick jump',
    'aerobic off axis jump', 'aerobic butterfly jump', 'aerobic split', 'aerobic turn',
    'aerobic balance turn', 'volleyball serve', 'volleyball block', 'volleyball first pass',
    'volleyball defend', 'volleyball protect', 'volleyball second pass', 'volleyball adjust',
    'volleyball save', 'volleyball second attack', 'volleyball spike', 'volleyball dink',
    'volleyball no offensive attack', 'football shoot', 'football long pass', 'football short pass',
    'football through pass', 'football cross', 'football dribble', 'football trap', 'football throw',
    'football diving', 'football tackle', 'football steal', 'football clearance', 'football block',
    'football press', 'football aerial duels', 'basketball pass', 'basketball drive', 'basketball dribble',
    'basketball 3-point shot', 'basketball 2-point shot', 'basketball free throw', 'basketball block',
    'basketball offensive rebound', 'basketball defensive rebound', 'basketball pass steal',
    'basketball dribble steal', 'basketball interfere shot', 'basketball pick-and-roll defensive',
    'basketball sag', 'basketball screen', 'basketball pass-inbound', 'basketball save',
    'basketball jump ball')


class _TubePreset(TubeDataset):
    """A :class:`TubeDataset` whose defaults differ where the benchmark's layout does (internal base).

    Subclasses set ``METAINFO`` (the class names), ``DEFAULT_SOURCE`` when it is ``'frames'``, and
    ``DEFAULTS``: ``ann_file``, ``data_prefix`` (the media folder, a str) and any other :class:`TubeDataset`
    argument whose default differs. An argument given by the caller always wins.

    Args:
        ann_file (str, optional): Defaults to ``DEFAULTS['ann_file']``.
        pipeline (list): Transforms. Defaults to ``[]``.
        data_prefix (dict, optional): Defaults to ``dict(video=DEFAULTS['data_prefix'])``.
        **kwargs: Any argument of :class:`TubeDataset`.
    """

    DEFAULTS: dict = {}

    def __init__(self,
                 ann_file: Optional[str] = None,
                 pipeline=(),
                 data_prefix: Optional[dict] = None,
                 **kwargs):
        defaults = dict(self.DEFAULTS)
        default_ann_file = defaults.pop('ann_file')
        default_prefix = dict(video=defaults.pop('data_prefix'))
        super().__init__(
            ann_file=default_ann_file if ann_file is None else ann_file,
            pipeline=list(pipeline),
            data_prefix=default_prefix if data_prefix is None else data_prefix,
            **{**defaults, **kwargs})


@DATASETS.register_module()
class UCF101_24Dataset(_TubePreset):
    """UCF101-24 (untrimmed, 24 classes, 1 split): ``data_root/rgb-images/{video}/{:05d}.jpg``."""

    METAINFO = dict(classes=UCF101_24_CLASSES)
    DEFAULT_SOURCE = 'frames'
    DEFAULTS = dict(ann_file='UCF101v2-GT.pkl', data_prefix='rgb-images')


@DATASETS.register_module()
class JHMDB21Dataset(_TubePreset):
    """JHMDB-21 (trimmed, 21 classes, 3 splits): ``data_root/Frames/{video}/{:05d}.png``."""

    METAINFO = dict(classes=JHMDB21_CLASSES)
    DEFAULT_SOURCE = 'frames'
    DEFAULTS = dict(ann_file='JHMDB-GT.pkl', data_prefix='Frames', filename_tmpl='{:05d}.png')


@DATASETS.register_module()
class UCFSportsDataset(_TubePreset):
    """UCFSports (trimmed, 10 classes, 1 split): ``data_root/Frames/{video}/{:05d}.jpg``."""

    METAINFO = dict(classes=UCFSPORTS_CLASSES)
    DEFAULT_SOURCE = 'frames'
    DEFAULTS = dict(ann_file='UCFSports-GT.pkl', data_prefix='Frames')


@DATASETS.register_module()
class SyntheticTubeDataset(_TubePreset):
    """The synthetic dataset of ``tools/data/make_synthetic.py``: ``data_root/videos/{video}.mp4``.

    The class names are read from the annotation file (the generator writes them).
    """

    DEFAULTS = dict(ann_file='annotations.pkl', data_prefix='videos')


@DATASETS.register_module()
class MultiSportsDataset(_TubePreset):
    """MultiSports (untrimmed, 66 classes, 1 split): ``data_root/trainval/{video}.mp4``.

    The layout of mmaction2's MultiSports data preparation (``tools/data/multisports``; its configs use
    ``data/multisports/trainval`` and ``data/multisports/annotations/multisports_GT.pkl``). The video names of
    ``multisports_GT.pkl`` carry the sport folder (``aerobic_gymnastics/v_...``), so a video is
    ``trainval/<sport>/<name>.mp4``. ``train_videos[0]`` / ``test_videos[0]`` of the pickle are the official
    train / validation splits (the test split has no public ground truth). Evaluate with
    ``TubeMetric(protocol='multisports')`` to get mmaction2's frame-mAP / video-mAP conventions.
    """

    METAINFO = dict(classes=MULTISPORTS_CLASSES)
    DEFAULTS = dict(ann_file='annotations/multisports_GT.pkl', data_prefix='trainval')
