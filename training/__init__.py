"""Offline trainer: training sets from session folders and the MMM layout, the phase-2 MLPs
(EMG2Exp, Exp2EMG) with participant-grouped cross-validation, reports and model bundles."""
