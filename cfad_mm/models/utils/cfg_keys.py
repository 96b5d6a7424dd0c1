"""Checked merging of a model's ``train_cfg`` / ``test_cfg`` dicts with their defaults."""
import difflib
from typing import Optional


def merge_known_keys(name: str, defaults: dict, given: Optional[dict]) -> dict:
    """``defaults`` updated with ``given``; a key of ``given`` that ``defaults`` does not have raises.

    A misspelt switch (``refine_iter=0`` for ``refine_iters``, ``score_thres`` for ``score_thr``) would
    otherwise be ignored without a word, and an ablation would silently run the default setting.

    Args:
        name (str): The name of the dict in messages, e.g. ``'test_cfg'``.
        defaults (dict): Every known key with its default value.
        given (dict, optional): The user's settings. None means all defaults.

    Returns:
        dict: A new dict with every key of ``defaults``.

    Raises:
        KeyError: ``given`` has keys that ``defaults`` lacks; the message lists them, the closest known key
            of each and all known keys.
    """
    given = dict(given or {})
    unknown = [k for k in given if k not in defaults]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1, cutoff=0.6)
            hints.append(f'{key!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
        raise KeyError(f'model.{name} has unknown key(s) {", ".join(hints)}; the known keys are '
                       f'{sorted(defaults)}')
    return dict(defaults, **given)
