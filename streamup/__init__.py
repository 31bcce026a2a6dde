"""streamup: upscale a video 2x or 4x with Real-ESRGAN-family models, frame for frame, audio untouched."""

__version__ = "0.1.0"
