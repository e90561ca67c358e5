"""Acquisition: LSL I/O and metadata, sample clocks, the ``EMG`` stream's outlet and bridge,
electrode schemes, the camera and its ``Video`` stream, the ``Markers`` stream."""
