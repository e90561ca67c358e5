"""Streaming library, in rooms: acquisition (LSL I/O, clocks, EMG and camera sources), dsp, bus,
pipeline (the join of a frame and the EMG envelope), recording (session files, replay, export) and
check; addresses, config, errors, folders and optional beside them."""
