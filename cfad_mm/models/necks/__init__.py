from .channel_mapper_3d import ChannelMapper3d

__all__ = ['ChannelMapper3d']
