"""Sessions on disk: the recorder (and LabRecorder's remote control), session folders, XDF and video
files, the reader, replay and export."""
