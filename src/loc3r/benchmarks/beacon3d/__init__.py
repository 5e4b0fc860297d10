"""Beacon3D (Huang et al., CVPR 2025): object-centric grounded QA in ScanNet scenes, scored per knowledge type and
per object."""
