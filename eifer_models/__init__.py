"""EIFER's models and how they run live: SMIRK-style encoders, FLAME, renderer, generator,
discriminator, EMG MLPs, ONNX export, inference runtimes and model bundles.

Submodules are imported explicitly (``from eifer_models.bundle import load_bundle``); this
package imports nothing heavy on its own.
"""
