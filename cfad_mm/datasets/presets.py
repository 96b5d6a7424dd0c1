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

All paths are relative to ``data_root`` (e.g. ``data/ucf101_24``); every argument of :class:`TubeDataset` can
be overridden (e.g. ``source='video', video_ext='.avi'`` for UCF101-24 videos instead of frames). The class
names below are the ``labels`` of the published ACT/MOC pickles; the names in the annotation file win (a
different number of classes raises, different spellings only warn).
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


def _prefix(data_prefix: Optional[dict], default: str) -> dict:
    return dict(video=default) if data_prefix is None else data_prefix


@DATASETS.register_module()
class UCF101_24Dataset(TubeDataset):
    """UCF101-24 (untrimmed, 24 classes, 1 split): ``data_root/rgb-images/{video}/{:05d}.jpg``.

    Args:
        ann_file (str): Defaults to ``'UCF101v2-GT.pkl'``.
        pipeline (list): Transforms. Defaults to ``[]``.
        data_prefix (dict, optional): Defaults to ``dict(video='rgb-images')``.
        **kwargs: Any argument of :class:`TubeDataset`.
    """

    METAINFO = dict(classes=UCF101_24_CLASSES)
    DEFAULT_SOURCE = 'frames'

    def __init__(self,
                 ann_file: str = 'UCF101v2-GT.pkl',
                 pipeline=(),
                 data_prefix: Optional[dict] = None,
                 filename_tmpl: str = '{:05d}.jpg',
                 **kwargs):
        super().__init__(
            ann_file=ann_file,
            pipeline=list(pipeline),
            data_prefix=_prefix(data_prefix, 'rgb-images'),
            filename_tmpl=filename_tmpl,
            **kwargs)


@DATASETS.register_module()
class JHMDB21Dataset(TubeDataset):
    """JHMDB-21 (trimmed, 21 classes, 3 splits): ``data_root/Frames/{video}/{:05d}.png``.

    Args:
        ann_file (str): Defaults to ``'JHMDB-GT.pkl'``.
        pipeline (list): Transforms. Defaults to ``[]``.
        data_prefix (dict, optional): Defaults to ``dict(video='Frames')``.
        filename_tmpl (str): Defaults to ``'{:05d}.png'``.
        **kwargs: Any argument of :class:`TubeDataset`.
    """

    METAINFO = dict(classes=JHMDB21_CLASSES)
    DEFAULT_SOURCE = 'frames'

    def __init__(self,
                 ann_file: str = 'JHMDB-GT.pkl',
                 pipeline=(),
                 data_prefix: Optional[dict] = None,
                 filename_tmpl: str = '{:05d}.png',
                 **kwargs):
        super().__init__(
            ann_file=ann_file,
            pipeline=list(pipeline),
            data_prefix=_prefix(data_prefix, 'Frames'),
            filename_tmpl=filename_tmpl,
            **kwargs)


@DATASETS.register_module()
class UCFSportsDataset(TubeDataset):
    """UCFSports (trimmed, 10 classes, 1 split): ``data_root/Frames/{video}/{:05d}.jpg``.

    Args:
        ann_file (str): Defaults to ``'UCFSports-GT.pkl'``.
        pipeline (list): Transforms. Defaults to ``[]``.
        data_prefix (dict, optional): Defaults to ``dict(video='Frames')``.
        **kwargs: Any argument of :class:`TubeDataset`.
    """

    METAINFO = dict(classes=UCFSPORTS_CLASSES)
    DEFAULT_SOURCE = 'frames'

    def __init__(self,
                 ann_file: str = 'UCFSports-GT.pkl',
                 pipeline=(),
                 data_prefix: Optional[dict] = None,
                 filename_tmpl: str = '{:05d}.jpg',
                 **kwargs):
        super().__init__(
            ann_file=ann_file,
            pipeline=list(pipeline),
            data_prefix=_prefix(data_prefix, 'Frames'),
            filename_tmpl=filename_tmpl,
            **kwargs)


@DATASETS.register_module()
class SyntheticTubeDataset(TubeDataset):
    """The synthetic dataset of ``tools/data/make_synthetic.py``: ``data_root/videos/{video}.mp4``.

    The class names are read from the annotation file (the generator writes them).

    Args:
        ann_file (str): Defaults to ``'annotations.pkl'``.
        pipeline (list): Transforms. Defaults to ``[]``.
        data_prefix (dict, optional): Defaults to ``dict(video='videos')``.
        **kwargs: Any argument of :class:`TubeDataset`.
    """

    DEFAULT_SOURCE = 'video'

    def __init__(self,
                 ann_file: str = 'annotations.pkl',
                 pipeline=(),
                 data_prefix: Optional[dict] = None,
                 video_ext: str = '.mp4',
                 **kwargs):
        super().__init__(
            ann_file=ann_file,
            pipeline=list(pipeline),
            data_prefix=_prefix(data_prefix, 'videos'),
            video_ext=video_ext,
            **kwargs)


@DATASETS.register_module()
class MultiSportsDataset(TubeDataset):
    """MultiSports (untrimmed, 66 classes, 1 split): ``data_root/trainval/{video}.mp4``.

    The layout of mmaction2's MultiSports data preparation (``tools/data/multisports``; its configs use
    ``data/multisports/trainval`` and ``data/multisports/annotations/multisports_GT.pkl``). The video names of
    ``multisports_GT.pkl`` carry the sport folder (``aerobic_gymnastics/v_...``), so a video is
    ``trainval/<sport>/<name>.mp4``. ``train_videos[0]`` / ``test_videos[0]`` of the pickle are the official
    train / validation splits (the test split has no public ground truth). Evaluate with
    ``TubeMetric(protocol='multisports')`` to get mmaction2's frame-mAP / video-mAP conventions.

    Args:
        ann_file (str): Defaults to ``'annotations/multisports_GT.pkl'``.
        pipeline (list): Transforms. Defaults to ``[]``.
        data_prefix (dict, optional): Defaults to ``dict(video='trainval')``.
        video_ext (str): Defaults to ``'.mp4'``.
        **kwargs: Any argument of :class:`TubeDataset`.
    """

    METAINFO = dict(classes=MULTISPORTS_CLASSES)
    DEFAULT_SOURCE = 'video'

    def __init__(self,
                 ann_file: str = 'annotations/multisports_GT.pkl',
                 pipeline=(),
                 data_prefix: Optional[dict] = None,
                 video_ext: str = '.mp4',
                 **kwargs):
        super().__init__(
            ann_file=ann_file,
            pipeline=list(pipeline),
            data_prefix=_prefix(data_prefix, 'trainval'),
            video_ext=video_ext,
            **kwargs)
