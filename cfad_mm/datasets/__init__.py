"""Tube datasets, annotation loading and tube transforms (registered on import)."""
from .annotation import AnnotationError, load_annotations, tube_statistics, validate_annotations
from .importers import AnnotationImportError, export_ava_csv, export_cvat, export_mot, import_annotations
from .media import MediaError, check_frame_folder, probe_video
from .presets import JHMDB21Dataset, SyntheticTubeDataset, UCF101_24Dataset, UCFSportsDataset
from .transforms import (
    PackTubeInputs,
    TubeFlip,
    TubeRandomCrop,
    TubeResize,
    boxes_to_input,
    boxes_to_original,
)
from .tube_dataset import TubeDataset

__all__ = [
    'AnnotationError', 'MediaError', 'probe_video', 'check_frame_folder', 'load_annotations',
    'validate_annotations', 'tube_statistics', 'TubeDataset',
    'UCF101_24Dataset', 'JHMDB21Dataset', 'UCFSportsDataset', 'SyntheticTubeDataset', 'TubeResize',
    'TubeRandomCrop', 'TubeFlip', 'PackTubeInputs', 'boxes_to_original', 'boxes_to_input',
    'AnnotationImportError', 'import_annotations', 'export_ava_csv', 'export_cvat', 'export_mot'
]
