"""Streaming library: LSL I/O, clocks, online EMG DSP, synchronisation, the ZeroMQ bus, session files."""
