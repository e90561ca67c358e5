"""Face detection and landmarks from MediaPipe's shipped TFLite models, and the encoder crop.

``models`` fetches the files from the mediapipe wheel; ``blazeface`` (detector), ``landmarks``
(478 points), ``crop`` (SMIRK / EIFER crop arithmetic), ``haar`` (fallback detector).
"""
