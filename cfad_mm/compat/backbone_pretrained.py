"""mmaction2 1.2.0's 3-D backbones ignore ``init_cfg=dict(type='Pretrained', ...)``.

``ResNet3d`` and its relatives override ``init_weights`` and only honour their own ``pretrained`` argument,
so mmengine's ``Pretrained`` initialisation is silently skipped. ``CFAD`` applies such an ``init_cfg`` itself
through :func:`cfad_mm.models.utils.load_pretrained_backbone` (``cfad_mm/models/utils/pretrained.py``, which
stays with the model code). Record: :data:`WORKAROUND` (version guard only: probing would import mmaction's
models).
"""
from .workaround import Workaround

WORKAROUND = Workaround(
    name='mmaction-backbone-pretrained-init-cfg',
    summary="mmaction's 3-D backbones ignore init_cfg=dict(type='Pretrained', ...)",
    written_for=('mmaction2==1.2.0', ),
    files=('cfad_mm/models/utils/pretrained.py', 'cfad_mm/models/detectors/cfad.py'),
    implemented_by='cfad_mm.models.utils.load_pretrained_backbone')
