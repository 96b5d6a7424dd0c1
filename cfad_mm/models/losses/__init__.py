from .tube_box_losses import tube_box_losses

__all__ = ['tube_box_losses']
