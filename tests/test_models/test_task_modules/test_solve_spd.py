"""The ONNX-exportable SPD solver used by PolyTubeCoder.fit_update during export."""
import pytest
import torch

from cfad_mm.models.task_modules.tube_coder import solve_spd_unrolled


@pytest.mark.parametrize('n', [1, 2, 4, 6])
def test_solve_spd_unrolled_matches_linalg_solve(n):
    torch.manual_seed(n)
    a = torch.randn(7, n, n, dtype=torch.float64)
    gram = a @ a.transpose(1, 2) + 0.1 * torch.eye(n, dtype=torch.float64)
    rhs = torch.randn(7, n, 4, dtype=torch.float64)
    x = solve_spd_unrolled(gram, rhs)
    assert x.shape == (7, n, 4)
    torch.testing.assert_close(x, torch.linalg.solve(gram, rhs))
    torch.testing.assert_close(gram @ x, rhs)


def test_solve_spd_unrolled_hand_computed():
    gram = torch.tensor([[[4.0, 2.0], [2.0, 3.0]]])
    rhs = torch.tensor([[[2.0], [5.0]]])
    # 4x + 2y = 2, 2x + 3y = 5 -> x = -0.5, y = 2
    torch.testing.assert_close(solve_spd_unrolled(gram, rhs), torch.tensor([[[-0.5], [2.0]]]))
