"""The live pipeline: its EMG and video inputs, the join of a frame with the EMG envelope at its
time, the models' outputs and health; biofeedback measures."""
