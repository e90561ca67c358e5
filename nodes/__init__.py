"""Runnable processes, each a thin shell over ``streaming`` and ``eifer_models``."""
