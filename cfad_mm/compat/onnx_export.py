"""Export-only fixes of the pinned stack, installed by :func:`onnx_export_context` and removed afterwards.

:func:`cfad_mm.apis.export.export_onnx` runs the exporter inside the context. Nothing here is active outside
an export.

1. **mmcv 2.1.0 ``RoIAlign`` symbolic** emits ONNX ``RoiAlign`` in its opset-10 form: it shifts the boxes by
   ``-0.5 / spatial_scale`` itself (``aligned=True``) and uses ``Squeeze`` with an ``axes`` attribute
   (invalid from opset 13). In that form onnxruntime also enlarges every RoI to at least one feature cell,
   which mmcv's ``aligned=True`` kernel does not do, so small boxes give different features. We replace the
   symbolic by one for opset >= 16 with ``coordinate_transformation_mode='half_pixel'``, which is exactly
   mmcv's ``aligned=True`` (``'output_half_pixel'`` for ``aligned=False``). Record:
   :data:`ROI_ALIGN_WORKAROUND` (version guard only).
2. **mmdet 3.3.0 ``DeltaXYWHBBoxCoder.decode``** switches to ``onnx_delta2bbox`` while exporting, which
   imports ``mmdet.core.export.dynamic_clip_for_onnx``, a module of mmdet 2.x that mmdet 3.x no longer
   ships. We provide that function (clipping to the static image size) for the duration of the export.
   Record: :data:`MMDET_CORE_EXPORT_WORKAROUND`; its probe reads mmdet's coder source (no import).
"""
import contextlib
import os.path as osp
import sys
import types

from .workaround import Workaround

MMDET_CORE_EXPORT = 'mmdet.core.export'
#: The mmdet file whose ONNX branch imports ``mmdet.core.export`` (relative to mmdet's package folder).
MMDET_DELTA_CODER = osp.join('models', 'task_modules', 'coders', 'delta_xywh_bbox_coder.py')


def _roi_align_symbolic(g, input, rois, output_size, spatial_scale, sampling_ratio, pool_mode, aligned):
    """ONNX ``RoiAlign`` (opset >= 16) equivalent to mmcv's ``RoIAlignFunction`` (see the module
    docstring)."""
    import torch
    from torch.onnx import TensorProtoDataType
    index0 = g.op('Constant', value_t=torch.tensor(0, dtype=torch.long))  # a scalar index drops the axis
    batch_indices = g.op('Cast', g.op('Gather', rois, index0, axis_i=1), to_i=TensorProtoDataType.INT64)
    boxes = g.op('Gather', rois, g.op('Constant', value_t=torch.tensor([1, 2, 3, 4], dtype=torch.long)),
                 axis_i=1)
    return g.op('RoiAlign', input, boxes, batch_indices, output_height_i=output_size[0],
                output_width_i=output_size[1], spatial_scale_f=spatial_scale,
                sampling_ratio_i=max(0, sampling_ratio), mode_s=pool_mode,
                coordinate_transformation_mode_s='half_pixel' if aligned else 'output_half_pixel')


def _dynamic_clip_for_onnx(x1, y1, x2, y2, max_shape):
    """Clip box coordinates (tensors) to ``max_shape = (H, W, ...)`` (what mmdet 2.x's function of this name
    did)."""
    if hasattr(max_shape, 'tolist'):
        max_shape = max_shape.tolist()
    h, w = float(max_shape[0]), float(max_shape[1])
    return x1.clamp(0, w), y1.clamp(0, h), x2.clamp(0, w), y2.clamp(0, h)


def _mmdet_roots():
    import importlib.util
    spec = importlib.util.find_spec('mmdet')  # a top-level package: found without importing it
    return list(spec.submodule_search_locations or []) if spec is not None else []


def mmdet_core_export_missing() -> bool:
    """Whether the installed mmdet lacks ``mmdet/core/export`` (a module or a package), found on disk."""
    roots = _mmdet_roots()
    return not any(osp.isdir(osp.join(r, 'core', 'export')) or osp.isfile(osp.join(r, 'core', 'export.py'))
                   for r in roots)


def mmdet_core_export_needed() -> bool:
    """Probe of :data:`MMDET_CORE_EXPORT_WORKAROUND`: mmdet's delta coder still imports
    ``mmdet.core.export`` and mmdet does not ship it. Reads the coder's source; imports nothing."""
    if not mmdet_core_export_missing():
        return False
    for root in _mmdet_roots():
        path = osp.join(root, MMDET_DELTA_CODER)
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                return MMDET_CORE_EXPORT in f.read()
    return True  # the coder moved: the version guard reports the new mmdet


@contextlib.contextmanager
def onnx_export_context():
    """Install the export-only fixes of the module docstring (RoIAlign symbolic, ``mmdet.core.export``) and
    remove them afterwards, also when the export raises."""
    from mmcv.ops.roi_align import RoIAlignFunction
    old_symbolic = RoIAlignFunction.__dict__['symbolic']
    RoIAlignFunction.symbolic = staticmethod(_roi_align_symbolic)
    added, stub, existing_core = [], None, None
    if MMDET_CORE_EXPORT not in sys.modules and mmdet_core_export_missing():
        core = sys.modules.get('mmdet.core')
        if core is None:
            core = types.ModuleType('mmdet.core')
            core.__path__ = []
            sys.modules['mmdet.core'] = core
            added.append('mmdet.core')
        else:
            existing_core = core
        stub = types.ModuleType(MMDET_CORE_EXPORT)
        stub.dynamic_clip_for_onnx = _dynamic_clip_for_onnx
        core.export = stub
        sys.modules[MMDET_CORE_EXPORT] = stub
        added.append(MMDET_CORE_EXPORT)
    try:
        yield
    finally:
        RoIAlignFunction.symbolic = old_symbolic
        for name in added:
            sys.modules.pop(name, None)
        if existing_core is not None and getattr(existing_core, 'export', None) is stub:
            del existing_core.export

ROI_ALIGN_WORKAROUND = Workaround(
    name='mmcv-roialign-onnx-symbolic',
    summary="mmcv's RoIAlign ONNX symbolic emits opset-10 RoiAlign, unlike its aligned=True kernel",
    written_for=('mmcv==2.1.0', ),
    files=('cfad_mm/compat/onnx_export.py', ),
    implemented_by='cfad_mm.compat.onnx_export.onnx_export_context')

MMDET_CORE_EXPORT_WORKAROUND = Workaround(
    name='mmdet-core-export-stub',
    summary="mmdet's DeltaXYWHBBoxCoder imports mmdet.core.export (an mmdet 2.x module) while exporting",
    written_for=('mmdet==3.3.0', ),
    files=('cfad_mm/compat/onnx_export.py', ),
    implemented_by='cfad_mm.compat.onnx_export.onnx_export_context',
    still_needed=mmdet_core_export_needed,
    probe=f'mmdet/{MMDET_DELTA_CODER} no longer imports mmdet.core.export, or mmdet ships mmdet/core/export')
