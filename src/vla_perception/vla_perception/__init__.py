"""Camera ingestion for the vla_stack.

USB/V4L2 through OpenCV, video files and a test pattern, plus the image-to-numpy conversion
that the whole stack uses instead of cv_bridge.
"""
