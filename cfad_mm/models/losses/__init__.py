from .tube_box_losses import masked_box_losses, tube_box_losses

__all__ = ['tube_box_losses', 'masked_box_losses']
