"""drc: personalized image generation by Disentangled Representation Composition."""

__version__ = "0.1.0"
