"""Camera sources (RealSense, OpenCV, synthetic) and the ``Video`` stream encoding."""
