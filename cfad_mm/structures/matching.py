"""One-to-one matching of maximal total gain, shared by the video-tube linking and the actor tracker."""
import numpy as np

# Gain of an admissible pair exactly at the threshold (> 0, so that the assignment still takes it).
_GAIN_EPS = 1e-9


def max_gain_matching(score: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """One-to-one admissible pairs (``valid`` and ``score >= threshold``) maximising the sum of
    ``score - threshold`` (``scipy.optimize.linear_sum_assignment``).

    Args:
        score (np.ndarray): ``(n, K)`` pair scores.
        valid (np.ndarray): ``(n, K)`` bool, the candidate pairs.
        threshold (float): The lowest score of a pair that may be taken.

    Returns:
        np.ndarray: ``(n,)`` int64 column matched to each row, -1 for none.
    """
    from scipy.optimize import linear_sum_assignment
    assigned = np.full(score.shape[0], -1, dtype=np.int64)
    admissible = valid & (score >= threshold)
    rows_any, cols_any = admissible.any(axis=1), admissible.any(axis=0)
    if not rows_any.any():
        return assigned
    rows, cols = np.nonzero(rows_any)[0], np.nonzero(cols_any)[0]
    sub = admissible[rows][:, cols]
    # forbidden pairs cost 0: an optimal full assignment restricted to its admissible pairs is a matching of
    # maximal total gain (every gain > 0), and any such matching extends to a full assignment of equal cost
    cost = np.where(sub, -(score[rows][:, cols] - threshold + _GAIN_EPS), 0.0)
    r, c = linear_sum_assignment(cost)
    keep = sub[r, c]
    assigned[rows[r[keep]]] = cols[c[keep]]
    return assigned
